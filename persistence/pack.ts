/**
 * Many strings as one argument: each item a 4-byte big-endian byte length and
 * its UTF-8 bytes (numbers as their decimal text). The commit script reads
 * them back with `struct.unpack(">I4c0", blob, pos)`, one call per item, as
 * the Lua strings separate arguments would have been.
 *
 * Why: ioredis writes a command by measuring every argument
 * (`Buffer.byteLength`, which first flattens a concatenated string) and
 * concatenating its text piece by piece, and the socket write flattens and
 * encodes that text again: for a commit of thousands of arguments that was
 * ~9 % of a worker's CPU. Here each item is encoded once, straight into its
 * place.
 */

/** Reused for every packing (the result is a copy of the part used). */
let scratch = Buffer.allocUnsafe(256 * 1024);
/** Larger packings get a buffer of their own rather than growing the scratch for good. */
const SCRATCH_MAX = 16 * 1024 * 1024;

/**
 * An item: a string, a number, or a string given in parts (written one after
 * the other: text built from pieces is never concatenated, only encoded).
 */
export type PackItem = string | number | readonly string[];

export function packItems(items: readonly PackItem[]): Buffer {
  // A UTF-16 code unit is at most 3 UTF-8 bytes; a number's text at most 24 characters.
  let bound = 0;
  for (let k = 0; k < items.length; k++) {
    const x = items[k]!;
    if (typeof x === 'string') bound += 4 + x.length * 3;
    else if (typeof x === 'number') bound += 28;
    else {
      bound += 4;
      for (let p = 0; p < x.length; p++) bound += x[p]!.length * 3;
    }
  }
  let buf = scratch;
  if (bound > buf.length) {
    buf = Buffer.allocUnsafe(bound);
    if (bound <= SCRATCH_MAX) scratch = buf;
  }
  let off = 0;
  for (let k = 0; k < items.length; k++) {
    const x = items[k]!;
    let n: number;
    if (typeof x === 'string') n = buf.write(x, off + 4, 'utf8');
    else if (typeof x === 'number') n = buf.write(String(x), off + 4, 'latin1');
    else {
      n = 0;
      for (let p = 0; p < x.length; p++) n += buf.write(x[p]!, off + 4 + n, 'utf8');
    }
    buf.writeUInt32BE(n, off);
    off += 4 + n;
  }
  const out = Buffer.allocUnsafe(off);
  buf.copy(out, 0, 0, off);
  return out;
}
