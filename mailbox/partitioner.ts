/**
 * `hash(type, key) mod partitions`: FNV-1a (32 bit) over the UTF-8 bytes of
 * `type`, a NUL byte and `key`. Stable across processes, versions and
 * languages; the partition count of a namespace never changes.
 */
export function partitionOf(type: string, key: string, partitions: number): number {
  // The bytes are hashed as they are encoded: no buffer per call (this runs for every send).
  let h = fnv1aUtf8(0x811c9dc5, type);
  h = Math.imul(h ^ 0, 0x01000193);
  h = fnv1aUtf8(h, key);
  return (h >>> 0) % partitions;
}

/** FNV-1a steps over the UTF-8 encoding of `s` (a lone surrogate encodes as U+FFFD, as Buffer.from does). */
function fnv1aUtf8(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, 0x01000193);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
      } else c = 0xfffd;
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), 0x01000193);
    } else if (c < 0x10000) {
      h = Math.imul(h ^ (0xe0 | (c >> 12)), 0x01000193);
      h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), 0x01000193);
    } else {
      h = Math.imul(h ^ (0xf0 | (c >> 18)), 0x01000193);
      h = Math.imul(h ^ (0x80 | ((c >> 12) & 0x3f)), 0x01000193);
      h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), 0x01000193);
    }
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), 0x01000193);
  }
  return h;
}
