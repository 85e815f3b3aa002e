import { createHash } from 'node:crypto';

/**
 * Which live worker should own each partition: rendezvous (highest random
 * weight) hashing with a cap of ceil(partitions / workers) per worker.
 * Deterministic for a given set of workers, so every worker computes the same
 * answer without talking to the others; balanced (no worker gets more than
 * the cap); and stable: when a worker joins or leaves, mostly the partitions
 * of that worker move. Leases arbitrate the moments when workers disagree.
 */
export function assignPartitions(partitions: number, workers: readonly string[]): string[] {
  const live = [...new Set(workers)].sort();
  if (live.length === 0) return [];
  const cap = Math.ceil(partitions / live.length);
  const load = new Map(live.map((w) => [w, 0]));
  const owners: string[] = [];
  for (let p = 0; p < partitions; p++) {
    const ranked = live
      .map((w) => ({ w, score: createHash('sha1').update(`${w}\u0000${p}`).digest().readUInt32BE(0) }))
      .sort((a, b) => b.score - a.score || (a.w < b.w ? -1 : 1));
    const owner = ranked.find((r) => load.get(r.w)! < cap)!.w;
    load.set(owner, load.get(owner)! + 1);
    owners.push(owner);
  }
  return owners;
}
