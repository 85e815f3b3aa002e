/**
 * Diagnostic (not part of `npm run bench`): where does send → output latency
 * go at a fixed offered rate? Wraps a few engine internals at run time
 * (PartitionConsumer.next/ack, CommitStore.applied/commit) to time each stage
 * of a partition worker's cycle, and reports event-loop delay and Node CPU.
 * Internals change: if a wrapped method is gone, its stage is just not shown.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx bench/latency-probe.ts [rate=1000] [seconds=5] [partitions=16]
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- wraps internals by name */
import { performance, monitorEventLoopDelay } from 'node:perf_hooks';
import os from 'node:os';
import { createActorSystem } from '../index';
import { deleteNamespace } from '../persistence';
import * as mailboxModule from '../mailbox';
import * as persistenceModule from '../persistence';
import { BENCH_TYPE, benchCounter, type CountedOutput } from './bench-machine';
const url = process.env.REDIS_URL!;
const ns = `probe-${process.pid}`;
const rate = Number(process.argv[2] ?? 1000), secs = Number(process.argv[3] ?? 5), partitions = Number(process.argv[4] ?? 16);
const PartitionConsumer = (mailboxModule as any).PartitionConsumer;
const CommitStore = (persistenceModule as any).CommitStore;
const stats: Record<string, number[]> = {};
const rec = (k: string, v: number) => (stats[k] ??= []).push(v);
const wrap = (proto: any, name: string, label: string, extra?: (args: any[], res: any) => void) => {
  const orig = proto?.[name];
  if (typeof orig !== 'function') return console.error(`(cannot wrap ${name}: not found)`);
  proto[name] = async function (...args: any[]) {
    const t = performance.now();
    const res = await orig.apply(this, args);
    rec(label, performance.now() - t);
    extra?.(args, res);
    return res;
  };
};
wrap(PartitionConsumer?.prototype, 'next', 'next() ms (incl. block)', (_a, jobs) => {
  if (jobs.length) {
    rec('jobs/batch', jobs.length);
    rec('events/batch', jobs.reduce((s: number, j: any) => s + (mailboxModule as any).eventCount(j.data), 0));
    const now = Date.now();
    for (const j of jobs) for (const e of (mailboxModule as any).decodeJobData(j.data) ?? []) rec('send->fetched ms', now - e.ts);
  }
});
wrap(PartitionConsumer?.prototype, 'ack', 'ack ms');
wrap(CommitStore?.prototype, 'commit', 'commit ms');
if (typeof CommitStore?.prototype?.precheck === 'function') wrap(CommitStore.prototype, 'precheck', 'precheck ms');
else wrap(CommitStore?.prototype, 'applied', 'applied ms');
const q = (a: number[], p: number) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]; };
(async () => {
  const worker = await createActorSystem({ redis: url, namespace: ns, partitions, actors: [benchCounter], worker: true });
  const client = await createActorSystem({ redis: url, namespace: ns, partitions, actors: [benchCounter], worker: false });
  while (worker.ownedPartitions().length < partitions) await new Promise((r) => setTimeout(r, 10));
  let got = 0; const lat: number[] = [];
  (async () => { for await (const o of client.outputs({ from: 'start' })) { got++; lat.push(performance.now() - (o.event as unknown as CountedOutput).t); } })().catch(() => {});
  const h = monitorEventLoopDelay({ resolution: 1 }); h.enable();
  const total = rate * secs, t0 = performance.now() + 10; let i = 0; const c0 = process.cpuUsage();
  await new Promise<void>((res) => { const tick = () => { const now = performance.now(); while (i < total && t0 + i * 1000 / rate <= now) { const k = `k${(i * 7919) % 10000}`; const ts0 = performance.now(); void client.send(BENCH_TYPE, k, { type: "inc", ph: 0, j: 0, t: ts0 }).then(() => rec("send resolved ms", performance.now() - ts0)); i++; } if (i >= total) return res(); setTimeout(tick, Math.max(0, t0 + i * 1000 / rate - performance.now())); }; setTimeout(tick, 10); });
  while (got < total) await new Promise((r) => setTimeout(r, 5));
  const wall = performance.now() - t0; const cpu = process.cpuUsage(c0);
  h.disable();
  console.error(`rate ${rate}/s, ${partitions} partitions (load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}): e2e p50 ${q(lat, 50).toFixed(1)} p99 ${q(lat, 99).toFixed(1)}; node cpu ${((cpu.user + cpu.system) / 10 / wall).toFixed(0)}%; event-loop delay p50 ${(h.percentile(50) / 1e6).toFixed(1)} p99 ${(h.percentile(99) / 1e6).toFixed(1)} max ${(h.max / 1e6).toFixed(1)} ms`);
  for (const [k, v] of Object.entries(stats)) console.error(`  ${k.padEnd(26)} n ${String(v.length).padStart(6)}  p50 ${q(v, 50).toFixed(1).padStart(7)}  p90 ${q(v, 90).toFixed(1).padStart(7)}  p99 ${q(v, 99).toFixed(1).padStart(7)}  mean ${(v.reduce((a, b) => a + b, 0) / v.length).toFixed(2)}`);
  await client.close(); await worker.close();
  await deleteNamespace(url, ns);
})();
