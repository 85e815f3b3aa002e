/**
 * A worker process of the bench's multi-process rows (forked by bench.ts with
 * an IPC channel). Env: REDIS_URL, BENCH_MODE ('engine' | 'raw'),
 * BENCH_NS, BENCH_PARTITIONS, and for raw mode BENCH_INDEX / BENCH_PROCS (this
 * process consumes the queues p with p % BENCH_PROCS === BENCH_INDEX, so each
 * queue keeps one consumer and its order).
 *
 * Reports to the parent every 50 ms: `{ owned }` (engine: partitions whose
 * lease this process holds) or `{ completed }` (raw: jobs completed so far).
 * SIGTERM closes gracefully.
 */
import { Redis } from 'ioredis';
import { Worker } from 'bullmq';
import { createActorSystem } from '../index';
import { benchCounter } from './bench-machine';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};

async function engine(): Promise<() => Promise<void>> {
  const system = await createActorSystem({ redis: env('REDIS_URL'), namespace: env('BENCH_NS'), partitions: Number(env('BENCH_PARTITIONS')), actors: [benchCounter] });
  system.events.on('error', (err) => process.send?.({ error: String(err?.stack ?? err) }));
  const timer = setInterval(() => process.send?.({ owned: system.ownedPartitions().length }), 50);
  return async () => {
    clearInterval(timer);
    await system.close();
  };
}

async function raw(): Promise<() => Promise<void>> {
  const partitions = Number(env('BENCH_PARTITIONS'));
  const index = Number(env('BENCH_INDEX'));
  const procs = Number(env('BENCH_PROCS'));
  const connection = new Redis(env('REDIS_URL'), { maxRetriesPerRequest: null });
  let completed = 0;
  const workers: Worker[] = [];
  for (let p = index; p < partitions; p += procs) {
    const w = new Worker('q', async () => {}, { connection, prefix: `{${env('BENCH_NS')}:${p}}`, concurrency: 1 });
    w.on('completed', () => completed++);
    w.on('error', (err) => process.send?.({ error: String(err?.stack ?? err) }));
    workers.push(w);
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  const timer = setInterval(() => process.send?.({ completed, owned: workers.length }), 50);
  return async () => {
    clearInterval(timer);
    await Promise.all(workers.map((w) => w.close()));
    connection.disconnect();
  };
}

(process.env.BENCH_MODE === 'raw' ? raw() : engine()).then(
  (close) => {
    const stop = () => void close().finally(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('disconnect', stop);
  },
  (err) => {
    console.error('[bench-worker]', err?.stack ?? err);
    process.exit(1);
  },
);
