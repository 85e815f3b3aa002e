/**
 * The Node flags keyflow's own worker processes run with (the ride-matching
 * app's workers, the bench's), and what we recommend for yours:
 * `node --max-semi-space-size=64 worker.js`.
 *
 * A worker keeps its batches in flight for a while: the events being applied,
 * their commit on its way to Redis and back, the outputs a reader holds, and
 * every actor's newest state until its next event. With V8's default young
 * generation (16 MB semi-spaces) a busy worker collects it every ~20 ms and
 * copies most of that in-flight data each time, which was ~25 % of a worker's
 * CPU at full load (`node --trace-gc`). With 64 MB, four times fewer
 * collections, and the data in flight has mostly died before one comes: in the
 * bench, garbage collection pause time per event about halves and throughput
 * rises 10-20 % (raw BullMQ's measured in the same process gains too). The cost
 * is memory: up to ~200 MB of young generation per process.
 *
 * V8 reads this flag when the process starts, so it must be on the command
 * line (or in NODE_OPTIONS); a library cannot set it from inside.
 */
export const WORKER_NODE_FLAGS: readonly string[] = Object.freeze(['--max-semi-space-size=64']);
