/**
 * Diagnostic (not part of `npm run bench`): where does send → output latency
 * go at a fixed offered rate? Wraps a few engine internals at run time
 * (PartitionConsumer.next/ack, CommitStore.applied/commit) to time each stage
 * of a partition worker's cycle, and reports event-loop delay, Node CPU, and
 * per event: socket writes (each a system call) and Redis commands by name
 * (scripts by their SHA-1 prefix and, where known, their name).
 * Internals change: if a wrapped method is gone, its stage is just not shown.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx bench/latency-probe.ts [rate=1000] [seconds=5] [partitions=16]
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- wraps internals by name */
import { performance, monitorEventLoopDelay } from 'node:perf_hooks';
import os from 'node:os';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createActorSystem } from '../index';
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
// Socket writes and Redis commands while the load runs.
let counting = false;
let writes = 0;
const commands = new Map<string, number>();
const write = net.Socket.prototype.write;
(net.Socket.prototype as any).write = function (...args: any[]) {
  if (counting) writes++;
  return (write as any).apply(this, args);
};
const sendCommand = (Redis.prototype as any).sendCommand;
(Redis.prototype as any).sendCommand = function (cmd: any, ...rest: any[]) {
  if (counting) {
    const name = cmd.name === 'evalsha' ? `evalsha ${String(cmd.args?.[0]).slice(0, 8)}` : cmd.name;
    commands.set(name, (commands.get(name) ?? 0) + 1);
  }
  return sendCommand.call(this, cmd, ...rest);
};
/** SHA-1 prefix -> script name: keyflow's Lua files and BullMQ's. */
const scriptNames = new Map<string, string>();
const sha = (text: string) => createHash('sha1').update(text).digest('hex').slice(0, 8);
for (const f of readdirSync(join(__dirname, '../persistence/lua'))) scriptNames.set(sha(readFileSync(join(__dirname, '../persistence/lua', f), 'utf8')), f);
try {
  const dir = join(require.resolve('bullmq'), '../scripts');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.js'))) {
    for (const v of Object.values(require(join(dir, f))) as { name?: string; content?: string }[]) if (v?.content && v.name) scriptNames.set(sha(v.content), `bullmq ${v.name}`);
  }
} catch {
  /* names are a convenience */
}
const q = (a: number[], p: number) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]; };
(async () => {
  const worker = await createActorSystem({ redis: url, namespace: ns, partitions, actors: [benchCounter], worker: true });
  const client = await createActorSystem({ redis: url, namespace: ns, partitions, actors: [benchCounter], worker: false });
  while (worker.ownedPartitions().length < partitions) await new Promise((r) => setTimeout(r, 10));
  let got = 0; const lat: number[] = [];
  (async () => { for await (const o of client.outputs({ from: 'start' })) { got++; lat.push(performance.now() - (o.event as unknown as CountedOutput).t); } })().catch(() => {});
  const h = monitorEventLoopDelay({ resolution: 1 }); h.enable();
  const total = rate * secs, t0 = performance.now() + 10; let i = 0; const c0 = process.cpuUsage(); counting = true;
  await new Promise<void>((res) => { const tick = () => { const now = performance.now(); while (i < total && t0 + i * 1000 / rate <= now) { const k = `k${(i * 7919) % 10000}`; const ts0 = performance.now(); void client.send(BENCH_TYPE, k, { type: "inc", ph: 0, j: 0, t: ts0 }).then(() => rec("send resolved ms", performance.now() - ts0)); i++; } if (i >= total) return res(); setTimeout(tick, Math.max(0, t0 + i * 1000 / rate - performance.now())); }; setTimeout(tick, 10); });
  while (got < total) await new Promise((r) => setTimeout(r, 5));
  const wall = performance.now() - t0; const cpu = process.cpuUsage(c0); counting = false;
  h.disable();
  console.error(`rate ${rate}/s, ${partitions} partitions (load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}): e2e p50 ${q(lat, 50).toFixed(1)} p99 ${q(lat, 99).toFixed(1)}; node cpu ${((cpu.user + cpu.system) / 10 / wall).toFixed(0)}%; event-loop delay p50 ${(h.percentile(50) / 1e6).toFixed(1)} p99 ${(h.percentile(99) / 1e6).toFixed(1)} max ${(h.max / 1e6).toFixed(1)} ms`);
  const perEvent = (n: number) => (n / total).toFixed(2);
  console.error(`  per event: socket writes ${perEvent(writes)}; Redis commands ${[...commands].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k.startsWith('evalsha ') ? scriptNames.get(k.slice(8)) ?? k : k}=${perEvent(v)}`).join(', ')}`);
  for (const [k, v] of Object.entries(stats)) console.error(`  ${k.padEnd(26)} n ${String(v.length).padStart(6)}  p50 ${q(v, 50).toFixed(1).padStart(7)}  p90 ${q(v, 90).toFixed(1).padStart(7)}  p99 ${q(v, 99).toFixed(1).padStart(7)}  mean ${(v.reduce((a, b) => a + b, 0) / v.length).toFixed(2)}`);
  await client.close(); await worker.close();
  await persistenceModule.deleteNamespace(url, ns);
})();
