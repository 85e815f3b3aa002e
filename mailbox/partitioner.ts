/**
 * `hash(type, key) mod partitions`: FNV-1a (32 bit) over the UTF-8 bytes of
 * `type`, a NUL byte and `key`. Stable across processes, versions and
 * languages; the partition count of a namespace never changes.
 */
export function partitionOf(type: string, key: string, partitions: number): number {
  let h = 0x811c9dc5;
  const bytes = Buffer.from(`${type}\u0000${key}`, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}
