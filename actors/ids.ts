import { hash, randomFillSync } from 'node:crypto';

/**
 * The ids the engine makes on its hot path, without the per-call overhead of
 * the `uuid` package (one `randomFillSync` per v7 id, parsing the namespace and
 * encoding the name separately for every v5 id). The formats are RFC 9562's:
 * `eventId()` is a version 7 UUID, `derivedId(name)` is the version 5 UUID of
 * `name` in keyflow's namespace, byte for byte what `uuid`'s `v5(name, NS)` gives
 * (ids derived before this module existed stay the same; spec/actors/ids.spec.ts checks it).
 */

/** Namespace of the deterministic (v5) ids of outputs, mail and timer jobs. */
export const KEYFLOW_UUID_NS = '6f0d6a3c-8a7e-4f55-9a43-2f0c1b7e5d10';
const NS_BYTES = Buffer.from(KEYFLOW_UUID_NS.replace(/-/g, ''), 'hex');

/** ASCII codes of the two hex digits of each byte value. */
const HEX_HI = Uint8Array.from({ length: 256 }, (_, i) => '0123456789abcdef'.charCodeAt(i >>> 4));
const HEX_LO = Uint8Array.from({ length: 256 }, (_, i) => '0123456789abcdef'.charCodeAt(i & 0xf));
/** Where an id's 36 characters are written, then read as one string: no chain of concatenations per id. */
const text = Buffer.alloc(36, '-');
/** Where each of the 16 bytes' two digits go in the 8-4-4-4-12 form. */
const DIGIT_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

function format(b: Uint8Array): string {
  for (let i = 0; i < 16; i++) {
    const v = b[i]!;
    const at = DIGIT_AT[i]!;
    text[at] = HEX_HI[v]!;
    text[at + 1] = HEX_LO[v]!;
  }
  return text.toString('latin1', 0, 36);
}

/** The hex digit of an RFC 9562 variant nibble (10xx) from the hash's nibble. */
const VARIANT_HEX = Array.from({ length: 16 }, (_, i) => ((i & 0x3) | 0x8).toString(16));
/** Namespace + name, written in place for each id (hashing is synchronous): no allocation per id. */
const nameBuffer = Buffer.allocUnsafe(16 * 1024);
NS_BYTES.copy(nameBuffer, 0);

/** Version 5 UUID (SHA-1) of `name` in keyflow's namespace: the same name always gives the same id. */
export function derivedId(name: string): string {
  let input: Buffer;
  // A UTF-16 code unit is at most 3 UTF-8 bytes.
  if (name.length * 3 <= nameBuffer.length - 16) {
    input = nameBuffer.subarray(0, 16 + nameBuffer.write(name, 16, 'utf8'));
  } else {
    input = Buffer.allocUnsafe(16 + Buffer.byteLength(name, 'utf8'));
    NS_BYTES.copy(input, 0);
    input.write(name, 16, 'utf8');
  }
  // The hex digest, with the version (5) and variant bits set where RFC 9562 puts them.
  const h = hash('sha1', input, 'hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${VARIANT_HEX[parseInt(h[16]!, 16)]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

// Random bytes are drawn 4 KiB at a time: one syscall-backed fill per 409 ids.
const pool = Buffer.allocUnsafe(4096);
let poolOffset = pool.length;
const v7 = new Uint8Array(16);
let lastMs = -1;
/** 42-bit counter (rand_a: 12 bits, then the top 30 bits of rand_b), seeded randomly each millisecond. */
let counter = 0;

/**
 * Version 7 UUID: 48-bit Unix ms timestamp, then random bits. Ids made by one
 * process are strictly increasing (a counter seeded at random each millisecond
 * keeps the order within a millisecond, as RFC 9562 §6.2 method 1 suggests).
 */
export function eventId(now = Date.now()): string {
  if (poolOffset + 10 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const r = poolOffset;
  poolOffset += 10;
  if (now > lastMs) {
    lastMs = now;
    // The top bit stays clear so the counter cannot run out within a millisecond.
    counter = (pool[r]! & 0x01) * 2 ** 40 + pool[r + 1]! * 2 ** 32 + pool[r + 2]! * 2 ** 24 + pool[r + 3]! * 2 ** 16 + pool[r + 4]! * 2 ** 8 + pool[r + 9]!;
  } else {
    counter++;
  }
  const ms = lastMs;
  v7[0] = Math.floor(ms / 2 ** 40) & 0xff;
  v7[1] = Math.floor(ms / 2 ** 32) & 0xff;
  v7[2] = (ms >>> 24) & 0xff;
  v7[3] = (ms >>> 16) & 0xff;
  v7[4] = (ms >>> 8) & 0xff;
  v7[5] = ms & 0xff;
  const hi = Math.floor(counter / 2 ** 30); // 12 bits
  const lo = counter % 2 ** 30; // 30 bits
  v7[6] = 0x70 | (hi >>> 8);
  v7[7] = hi & 0xff;
  v7[8] = 0x80 | (lo >>> 24);
  v7[9] = (lo >>> 16) & 0xff;
  v7[10] = (lo >>> 8) & 0xff;
  v7[11] = lo & 0xff;
  v7[12] = pool[r + 5]!;
  v7[13] = pool[r + 6]!;
  v7[14] = pool[r + 7]!;
  v7[15] = pool[r + 8]!;
  return format(v7);
}
