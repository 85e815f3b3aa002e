/**
 * Deterministic pseudo-random numbers in [0, 1) (mulberry32): the same seed
 * gives the same workload and the same fault schedule on every run.
 */
export { mulberry32 as rng } from '../../apps/lib/random';
