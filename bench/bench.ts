/**
 * keyflow benchmark: the engine against raw BullMQ on the same Redis.
 *
 *   npm run bench [-- --json] [--events N] [--keys N] [--partitions N] [--rate N] [--seconds N]
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx bench/bench.ts [flags]
 *
 * Everything runs in this one Node process (plus the Redis server):
 *   - engine: one worker system (`worker: true`, 16 partition workers) and a
 *     separate producer/reader system (`worker: false`, its own connection),
 *     as an API process and a worker process would be, but co-located;
 *   - raw BullMQ: one Queue per partition (producer connection) and one Worker
 *     per queue (shared worker connection + BullMQ's blocking duplicates).
 *
 * Logs go to stderr; stdout holds the table, or with --json exactly one JSON
 * object (npm itself prints a "> keyflow bench" banner on stdout unless run as
 * `npm run --silent bench -- --json`). Other flags: --window N (sends in
 * flight), --chunk N (items per sendMany/addBulk), --verify N (keys checked,
 * 0 = all), --unordered N (concurrency of the extra raw row, 0 = skip),
 * --warmup N, --latency-warmup S (seconds at the offered rate before each
 * latency measurement, default 2), --only engine|raw (diagnostics). Exit code 1 if a correctness
 * check failed.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { Queue, Worker, type Job } from 'bullmq';
import { createActorSystem, deleteNamespace, type CommittedEvent } from '../index';
import { partitionOf } from '../mailbox'; // raw BullMQ spreads the same keys over the same queues
import { BENCH_TYPE, benchCounter, type CountedOutput, type IncEvent } from './bench-machine';
import { fullGc } from './gc';

// ---------------------------------------------------------------------------
// flags

interface Flags {
  events: number;
  keys: number;
  partitions: number;
  rate: number;
  seconds: number;
  json: boolean;
  /** Sends in flight at once in the throughput phases (a window is awaited before the next). */
  window: number;
  /** Items per sendMany / addBulk call. */
  chunk: number;
  /** Keys whose state is checked with get() afterwards (0 = all). */
  verify: number;
  /** Concurrency of the second, unordered raw BullMQ row (0 = skip it). */
  unordered: number;
  /** Events of the warm-up of each side (not measured). */
  warmup: number;
  /** Seconds at the offered rate before each latency measurement (not recorded). */
  latencyWarmup: number;
  /** Diagnostics: run one side only ('engine' or 'raw'); no ratios then. */
  only?: 'engine' | 'raw';
  /** Rows with the workers in this many separate processes (the bench process produces and reads). */
  procs: number[];
}

function parseFlags(argv: string[]): Flags {
  const f: Flags = { events: 100_000, keys: 10_000, partitions: 16, rate: 1_000, seconds: 10, json: false, window: 2_000, chunk: 500, verify: 0, unordered: 16, warmup: 5_000, latencyWarmup: 2, procs: [1, 2, 3] };
  const ints: Record<string, keyof Flags> = {
    '--events': 'events',
    '--keys': 'keys',
    '--partitions': 'partitions',
    '--rate': 'rate',
    '--seconds': 'seconds',
    '--window': 'window',
    '--chunk': 'chunk',
    '--verify': 'verify',
    '--unordered': 'unordered',
    '--warmup': 'warmup',
    '--latency-warmup': 'latencyWarmup',
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    let value: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    if (arg === '--json') {
      f.json = true;
      continue;
    }
    if (arg === '--only') {
      const v = value ?? argv[++i];
      if (v !== 'engine' && v !== 'raw') throw new Error(`--only needs 'engine' or 'raw', got ${String(v)}`);
      f.only = v;
      continue;
    }
    if (arg === '--procs') {
      const v = value ?? argv[++i] ?? '';
      const list = v === '' || v === '0' ? [] : v.split(',').map(Number);
      if (list.some((n) => !Number.isInteger(n) || n < 1 || n > 8)) throw new Error(`--procs needs a comma-separated list of process counts 1..8 (or 0 for none), got ${v}`);
      f.procs = list;
      continue;
    }
    if (arg === '--help' || arg === '-h') {
      process.stderr.write(`usage: bench.ts [--json] [--only engine|raw] [--procs 1,2,3] ${Object.keys(ints).map((k) => `[${k} N]`).join(' ')}\n`);
      process.exit(0);
    }
    const name = ints[arg];
    if (!name) throw new Error(`unknown flag ${arg}`);
    value ??= argv[++i];
    const n = Number(value);
    const min = name === 'verify' || name === 'unordered' || name === 'warmup' || name === 'latencyWarmup' ? 0 : 1;
    if (value === undefined || !Number.isFinite(n) || n < min) throw new Error(`${arg} needs a number >= ${min}, got ${String(value)}`);
    (f[name] as number) = name === 'seconds' || name === 'rate' ? n : Math.floor(n);
  }
  return f;
}

// ---------------------------------------------------------------------------
// helpers

const log = (...a: unknown[]) => console.error('[bench]', ...a);
/** Node's flags for this run (both sides run under them; `npm run bench` passes WORKER_NODE_FLAGS), tsx's loader left out. */
const nodeFlags = () => process.execArgv.filter((a, i, all) => a !== '--import' && all[i - 1] !== '--import');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

interface LatencyStats {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

function latencyStats(values: number[]): LatencyStats {
  const s = [...values].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return { count: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s[s.length - 1] ?? NaN, mean };
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

/** Redis-side cost counters (INFO): CPU seconds and commands processed. */
interface RedisCounters {
  cpu: number;
  commands: number;
}

/** A numeric field of an INFO reply (NaN when absent). */
function infoNumber(info: string, name: string): number {
  return Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? NaN);
}

async function redisCounters(admin: Redis): Promise<RedisCounters> {
  const info = await admin.info();
  return { cpu: infoNumber(info, 'used_cpu_user') + infoNumber(info, 'used_cpu_sys'), commands: infoNumber(info, 'total_commands_processed') };
}

/**
 * Redis's AOF rewrites, kept out of the measured phases. The bench's Redis
 * keeps an AOF (appendfsync everysec), and Redis forks a rewrite whenever the
 * file has doubled past auto-aof-rewrite-min-size (64 MB): at these write
 * rates, every few seconds, whichever side is being measured. The child takes
 * one of the two cores, and its CPU is in no INFO counter; where rewrites
 * landed moved a 2-second phase by ~10 %. So, on a Redis this run started
 * (KEYFLOW_REDIS_PRIVATE, set by `npm run bench`), the automatic rewrite is
 * put off to 1 GB (more than a phase writes) and the file is compacted before
 * each measured phase (BGREWRITEAOF, waited for). The AOF stays on and every
 * write still goes to it. A Redis the bench did not start is left as it is.
 */
class AofHousekeeping {
  /** Rewrites the bench asked for, one before each measured phase. */
  compactions = 0;
  /** Rewrites Redis started on its own after the first compaction (none expected: nothing between two compactions writes 1 GB). */
  rewritesByRedis = 0;
  /** The largest AOF found before a compaction or at the end (bytes). */
  largestAofBytes = 0;
  /** Redis's count of rewrites (INFO aof_rewrites) after the last compaction. */
  private rewritesSeen: number | undefined;

  private constructor(
    private readonly admin: Redis,
    readonly active: boolean,
  ) {}

  static async setUp(admin: Redis, appendonly: string): Promise<AofHousekeeping> {
    const active = appendonly === 'yes' && process.env.KEYFLOW_REDIS_PRIVATE === '1';
    if (active) await admin.config('SET', 'auto-aof-rewrite-min-size', String(1024 * 1024 * 1024));
    return new AofHousekeeping(admin, active);
  }

  /** Before a measured phase: compact the AOF and wait until the rewrite is done. */
  async compact(): Promise<void> {
    if (!this.active) return;
    await this.observe();
    await this.admin.bgrewriteaof();
    this.rewritesSeen = (await this.settled()).count;
    this.compactions++;
  }

  /** After a phase: note what it left (the AOF's size, rewrites Redis started on its own meanwhile). */
  async observe(): Promise<void> {
    if (!this.active) return;
    const p = await this.settled();
    if (p.size > this.largestAofBytes) this.largestAofBytes = p.size;
    if (this.rewritesSeen !== undefined) this.rewritesByRedis += p.count - this.rewritesSeen;
    this.rewritesSeen = p.count;
  }

  /** Once no rewrite is in progress or scheduled: the AOF's size and the rewrites so far. */
  private async settled(): Promise<{ size: number; count: number }> {
    const deadline = performance.now() + 120_000;
    for (;;) {
      const info = await this.admin.info('persistence');
      const busy = infoNumber(info, 'aof_rewrite_in_progress') === 1 || infoNumber(info, 'aof_rewrite_scheduled') === 1;
      if (!busy) return { size: infoNumber(info, 'aof_current_size'), count: infoNumber(info, 'aof_rewrites') };
      if (performance.now() > deadline) throw new Error('the AOF rewrite did not finish within 120 s');
      await sleep(10);
    }
  }
}

/** Set by main: what CostMeter.start does to Redis before each measured phase. */
let housekeeping: AofHousekeeping | undefined;

/** Cost of one measured phase: wall time, Node CPU (this whole process), Redis CPU and commands. */
class CostMeter {
  private t0 = 0;
  private cpu0: NodeJS.CpuUsage = { user: 0, system: 0 };
  private children0 = 0;
  private redis0: RedisCounters = { cpu: 0, commands: 0 };
  /** `children`: CPU ms used so far by the worker processes of the phase (counted as Node CPU). */
  constructor(
    private readonly admin: Redis,
    private readonly children: () => number = () => 0,
  ) {}

  async start(): Promise<void> {
    await housekeeping?.compact();
    this.redis0 = await redisCounters(this.admin);
    this.cpu0 = process.cpuUsage();
    this.children0 = this.children();
    this.t0 = performance.now();
  }

  /** Node CPU is taken at `end` (the caller stops at the moment its work is done). */
  async stop(items: number, endAt = performance.now()): Promise<Cost> {
    const cpu = process.cpuUsage(this.cpu0);
    const childMs = this.children() - this.children0;
    const redis = await redisCounters(this.admin);
    const wallMs = endAt - this.t0;
    const nodeCpuMs = (cpu.user + cpu.system) / 1000 + childMs;
    const redisCpuMs = (redis.cpu - this.redis0.cpu) * 1000;
    return {
      items,
      wallMs: r1(wallMs),
      perSec: Math.round((items / wallMs) * 1000),
      nodeCpuMsPer1k: r2((nodeCpuMs / items) * 1000),
      ...(childMs > 0 ? { workerProcsCpuMsPer1k: r2((childMs / items) * 1000) } : {}),
      redisCpuMsPer1k: r2((redisCpuMs / items) * 1000),
      redisCmdsPerItem: r2((redis.commands - this.redis0.commands) / items),
      nodeCpuPct: Math.round((nodeCpuMs / wallMs) * 100),
      redisCpuPct: Math.round((redisCpuMs / wallMs) * 100),
    };
  }
}

interface Cost {
  items: number;
  wallMs: number;
  perSec: number;
  nodeCpuMsPer1k: number;
  /** Of nodeCpuMsPer1k, the worker processes' part (rows with worker processes only). */
  workerProcsCpuMsPer1k?: number;
  redisCpuMsPer1k: number;
  redisCmdsPerItem: number;
  /** CPU used over the wall time, in % of one core. */
  nodeCpuPct: number;
  redisCpuPct: number;
}

/** Resolves when `count()` reaches `target`, or rejects after `timeoutMs`. */
function waitFor(what: string, count: () => number, target: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const deadline = performance.now() + timeoutMs;
    const check = () => {
      if (count() >= target) return resolve(performance.now());
      if (performance.now() > deadline) return reject(new Error(`${what}: ${count()} of ${target} after ${timeoutMs} ms`));
      setTimeout(check, 1);
    };
    check();
  });
}

/**
 * Fire `fire(i)` for i = 0 .. rate*seconds-1 at a fixed offered rate. Each
 * event's due time is absolute (t0 + i/rate), so timer jitter never
 * accumulates: a late tick sends everything due. Returns how late sends were.
 */
function offeredLoad(rate: number, seconds: number, fire: (i: number) => void): Promise<{ sent: number; lag: LatencyStats }> {
  const total = Math.max(1, Math.round(rate * seconds));
  const interval = 1000 / rate;
  const t0 = performance.now() + 10;
  const lags: number[] = [];
  let i = 0;
  return new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (i < total && t0 + i * interval <= now) {
        lags.push(now - (t0 + i * interval));
        fire(i++);
      }
      if (i >= total) return resolve({ sent: total, lag: latencyStats(lags) });
      setTimeout(tick, Math.max(0, t0 + i * interval - performance.now()));
    };
    setTimeout(tick, 10);
  });
}

/**
 * A full garbage collection, so that a latency measurement does not pay for
 * the previous phase's garbage (what JMH does between iterations). The
 * measured phase's own collections are still in it.
 */
async function collectGarbage(): Promise<void> {
  fullGc();
  await sleep(100);
}

/** CPU ms used so far by a process (user + system), from /proc; 0 when it is gone. */
function procCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
const CLOCK_TICKS = 100;

/** Worker processes (bench/bench-worker.ts) forked with an IPC channel; they report `owned` / `completed`. */
class WorkerProcs {
  private readonly children: { proc: ChildProcess; owned: number; completed: number; lastCpuMs: number }[] = [];

  constructor(n: number, mode: 'engine' | 'raw', env: Record<string, string>) {
    for (let i = 0; i < n; i++) {
      const proc = fork(path.join(__dirname, 'bench-worker.ts'), [], {
        // The bench's own Node flags (WORKER_NODE_FLAGS when run by `npm run bench`), --import tsx included.
        execArgv: process.execArgv,
        env: { ...process.env, ...env, BENCH_MODE: mode, BENCH_INDEX: String(i), BENCH_PROCS: String(n) },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const child = { proc, owned: 0, completed: 0, lastCpuMs: 0 };
      proc.on('message', (m: { owned?: number; completed?: number; error?: string }) => {
        if (m.owned !== undefined) child.owned = m.owned;
        if (m.completed !== undefined) child.completed = m.completed;
        if (m.error) log(`worker process ${proc.pid}: ${m.error}`);
      });
      this.children.push(child);
    }
  }

  get owned(): number {
    return this.children.reduce((a, c) => a + c.owned, 0);
  }

  get maxOwned(): number {
    return Math.max(0, ...this.children.map((c) => c.owned));
  }

  get completed(): number {
    return this.children.reduce((a, c) => a + c.completed, 0);
  }

  /** CPU ms of all the processes so far (a process that exited keeps its last reading). */
  cpuMs(): number {
    let ms = 0;
    for (const c of this.children) {
      const now = c.proc.pid ? procCpuMs(c.proc.pid) : 0;
      if (now > 0) c.lastCpuMs = now;
      ms += c.lastCpuMs;
    }
    return ms;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.proc.exitCode !== null || c.proc.signalCode !== null) return resolve();
            const t = setTimeout(() => c.proc.kill('SIGKILL'), 15_000);
            c.proc.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            c.proc.kill('SIGTERM');
          }),
      ),
    );
  }
}

// ---------------------------------------------------------------------------
// engine

interface Phase {
  name: string;
  expected: number;
  received: number;
  /** Send→output-read latencies (ms), when recorded. */
  latencies?: number[];
}

interface EngineResult {
  send: Cost & { sendMs: number };
  sendMany: Cost & { sendMs: number };
  /** send → output read by the outputs() reader; `committed`: send → the worker's commit returned (its 'committed' event). */
  latency: LatencyStats & { schedLagP99: number; offered: number; cost: Cost; committed: LatencyStats };
  /** sendMany throughput with the workers in `processes` separate processes, and latency at the same offered rate (half as long). */
  procs: (Cost & { processes: number; latency: LatencyStats })[];
  correctness: {
    keysChecked: number;
    stateMismatches: number;
    outputOrderViolations: number;
    duplicateOutputs: number;
    sendErrors: number;
    systemErrors: number;
    deadLettered: number;
    firstProblems: string[];
  };
}

async function runEngine(f: Flags, url: string, admin: Redis, namespace: string): Promise<EngineResult> {
  const keys = Array.from({ length: f.keys }, (_, i) => `k${i}`);
  const warmKeys = Array.from({ length: Math.min(100, f.keys) }, (_, i) => `w${i}`);
  /** Events sent so far to each key: the next event's j. */
  const sentTo = new Map<string, number>();
  /** Last output seq read per key (outputs of a key must come 1, 2, 3, ...). */
  const lastSeq = new Map<string, number>();
  const problems: string[] = [];
  const problem = (msg: string) => {
    if (problems.length < 10) problems.push(msg);
  };
  let outputOrderViolations = 0;
  let duplicateOutputs = 0;
  let sendErrors = 0;
  let systemErrors = 0;
  let deadLettered = 0;

  const worker = await createActorSystem({ redis: url, namespace, partitions: f.partitions, actors: [benchCounter], worker: true });
  const client = await createActorSystem({ redis: url, namespace, partitions: f.partitions, actors: [benchCounter], worker: false });
  for (const sys of [worker, client]) {
    sys.events.on('error', (err: Error, ctx: unknown) => {
      systemErrors++;
      problem(`system error ${err?.stack ?? String(err)} ctx=${JSON.stringify(ctx)}`);
    });
    sys.events.on('deadLettered', (e: { key: string; error: Error }) => {
      deadLettered++;
      problem(`dead-lettered ${e.key}: ${e.error?.message}`);
    });
  }
  const phases: Phase[] = [];
  let readerDone: Promise<void> | undefined;
  try {
    const leaseDeadline = Date.now() + 15_000;
    while (worker.ownedPartitions().length < f.partitions) {
      if (Date.now() > leaseDeadline) throw new Error(`worker holds ${worker.ownedPartitions().length} of ${f.partitions} leases after 15 s`);
      await sleep(10);
    }

    // One reader for the whole run, from the start of this (fresh) namespace: no output can be missed.
    readerDone = (async () => {
      try {
        for await (const out of client.outputs({ from: 'start' })) {
          const now = performance.now();
          const ev = out.event as unknown as CountedOutput;
          const last = lastSeq.get(out.key) ?? 0;
          if (out.seq <= last) {
            duplicateOutputs++;
            problem(`output of ${out.key} seq ${out.seq} after seq ${last}`);
            continue;
          }
          if (out.seq !== last + 1 || out.seq !== ev.j + 1 || ev.n !== out.seq) {
            outputOrderViolations++;
            problem(`output of ${out.key}: seq ${out.seq}, previous ${last}, event j ${ev.j}, n ${ev.n}`);
          }
          lastSeq.set(out.key, out.seq);
          const phase = phases[ev.ph];
          if (!phase) continue;
          phase.received++;
          phase.latencies?.push(now - ev.t);
        }
      } catch (err) {
        problem(`reader: ${(err as Error).stack}`);
      }
    })();

    const newPhase = (name: string, expected: number, withLatency = false): number => {
      phases.push({ name, expected, received: 0, latencies: withLatency ? [] : undefined });
      return phases.length - 1;
    };
    const incFor = (ph: number, key: string): IncEvent => {
      const j = sentTo.get(key) ?? 0;
      sentTo.set(key, j + 1);
      return { type: 'inc', ph, j, t: performance.now() };
    };
    const countSendError = (err: unknown) => {
      sendErrors++;
      problem(`send: ${(err as Error)?.stack ?? String(err)}`);
    };
    const waitPhase = (ph: number, timeoutMs: number) => waitFor(`engine ${phases[ph]!.name}`, () => phases[ph]!.received, phases[ph]!.expected, timeoutMs);

    // Warm-up (JIT, connections, leases): other keys, not measured.
    if (f.warmup > 0) {
      const ph = newPhase('warmup', f.warmup);
      for (let i = 0; i < f.warmup; i += f.window) {
        const n = Math.min(f.window, f.warmup - i);
        await Promise.all(Array.from({ length: n }, (_, w) => {
          const key = warmKeys[(i + w) % warmKeys.length]!;
          return client.send(BENCH_TYPE, key, incFor(ph, key)).catch(countSendError);
        }));
      }
      await waitPhase(ph, 60_000);
      log(`engine warm-up: ${f.warmup} events done`);
    }

    const meter = new CostMeter(admin);
    let sendRow: EngineResult['send'];
    let sendManyRow: EngineResult['sendMany'];
    let latencyRow: EngineResult['latency'];

    // 1a. send(): windows of `window` concurrent calls; event i goes to key i % keys.
    {
      const ph = newPhase('send', f.events);
      await meter.start();
      for (let i = 0; i < f.events; i += f.window) {
        const n = Math.min(f.window, f.events - i);
        const calls = new Array<Promise<unknown>>(n);
        for (let w = 0; w < n; w++) {
          const key = keys[(i + w) % keys.length]!;
          calls[w] = client.send(BENCH_TYPE, key, incFor(ph, key)).catch(countSendError);
        }
        await Promise.all(calls);
      }
      const sentAt = performance.now();
      const doneAt = await waitPhase(ph, 120_000);
      const cost = await meter.stop(f.events, doneAt);
      sendRow = { ...cost, sendMs: r1(sentAt - (doneAt - cost.wallMs)) };
      log(`engine send():     ${cost.perSec} events/s (${cost.wallMs} ms; sends resolved after ${sendRow.sendMs} ms)`);
    }

    /** `n` events (event i to key i % keys) in windows of `window`, as sendMany calls of `chunk` items. */
    const sendManyAll = async (ph: number, n: number) => {
      for (let i = 0; i < n; i += f.window) {
        const m = Math.min(f.window, n - i);
        const calls: Promise<unknown>[] = [];
        for (let c = 0; c < m; c += f.chunk) {
          const items = [];
          for (let w = c; w < Math.min(m, c + f.chunk); w++) {
            const key = keys[(i + w) % keys.length]!;
            items.push({ type: BENCH_TYPE, key, event: incFor(ph, key) });
          }
          calls.push(client.sendMany(items).catch(countSendError));
        }
        await Promise.all(calls);
      }
    };

    // 1b. sendMany(): the same windows, as sendMany calls of `chunk` items.
    {
      const ph = newPhase('sendMany', f.events);
      await meter.start();
      await sendManyAll(ph, f.events);
      const sentAt = performance.now();
      const doneAt = await waitPhase(ph, 120_000);
      const cost = await meter.stop(f.events, doneAt);
      sendManyRow = { ...cost, sendMs: r1(sentAt - (doneAt - cost.wallMs)) };
      log(`engine sendMany(): ${cost.perSec} events/s (${cost.wallMs} ms; sends resolved after ${sendManyRow.sendMs} ms)`);
    }

    // 3. Latency at a fixed offered rate: send() per event, fire and forget (the producer coalesces what is due together).
    const latencyPhase = async (name: string, seconds: number, m: CostMeter): Promise<EngineResult['latency']> => {
      const inflight: Promise<unknown>[] = [];
      await collectGarbage();
      // The offered rate for latencyWarmup seconds first, not recorded: the steady state is measured,
      // not the change of pace from the phase before (JIT of the light-load paths, the GC of the
      // throughput phase's garbage). Raw BullMQ gets the same.
      if (f.latencyWarmup > 0) {
        const wph = newPhase(`${name} (warm-up)`, Math.max(1, Math.round(f.rate * f.latencyWarmup)));
        await offeredLoad(f.rate, f.latencyWarmup, (i) => {
          const key = keys[(i * 7919 + 1) % keys.length]!;
          inflight.push(client.send(BENCH_TYPE, key, incFor(wph, key)).catch(countSendError));
        });
      }
      const total = Math.max(1, Math.round(f.rate * seconds));
      const ph = newPhase(name, total, true);
      // send → committed: the worker system's 'committed' event (BullMQ's 'completed' counterpart), same clock.
      const committedLat: number[] = [];
      const onCommitted = ({ events }: { events: readonly CommittedEvent[] }) => {
        const now = performance.now();
        for (const e of events) {
          const ev = e.event as unknown as IncEvent;
          if (ev.ph === ph) committedLat.push(now - ev.t);
        }
      };
      worker.events.on('committed', onCommitted);
      await m.start();
      const { lag } = await offeredLoad(f.rate, seconds, (i) => {
        const key = keys[(i * 7919) % keys.length]!;
        inflight.push(client.send(BENCH_TYPE, key, incFor(ph, key)).catch(countSendError));
      });
      await Promise.all(inflight);
      const cost = await m.stop(total, await waitPhase(ph, 60_000));
      worker.events.off('committed', onCommitted);
      const stats = latencyStats(phases[ph]!.latencies!);
      // Empty when the workers run in other processes (their commits are not seen here).
      const committed = latencyStats(committedLat);
      log(
        `engine ${name} @${f.rate}/s: ${committed.count > 0 ? `send→committed p50 ${r2(committed.p50)} ms, p99 ${r2(committed.p99)} ms; ` : ''}send→output read p50 ${r2(stats.p50)} ms, p99 ${r2(stats.p99)} ms, max ${r2(stats.max)} ms (schedule lag p99 ${r2(lag.p99)} ms)`,
      );
      return { ...stats, schedLagP99: r2(lag.p99), offered: f.rate, cost, committed };
    };
    latencyRow = await latencyPhase('latency', f.seconds, meter);

    // 4. The workers in separate processes (as deployed: API/producer processes and worker
    // processes): the in-process worker system steps down, N worker processes take the
    // partitions; this process only sends and reads. Each row warms the new processes'
    // actors with one event per key first (not measured).
    const procRows: EngineResult['procs'] = [];
    if (f.procs.length > 0) await worker.close();
    for (const n of f.procs) {
      const procs = new WorkerProcs(n, 'engine', { BENCH_NS: namespace, BENCH_PARTITIONS: String(f.partitions) });
      try {
        await waitFor(`engine ${n} worker processes: partitions owned`, () => (procs.owned === f.partitions && procs.maxOwned <= Math.ceil(f.partitions / n) ? 1 : 0), 1, 60_000);
        const warm = newPhase(`procs${n}-warm`, keys.length);
        await sendManyAll(warm, keys.length);
        await waitPhase(warm, 60_000);
        const ph = newPhase(`procs${n}`, f.events);
        const pm = new CostMeter(admin, () => procs.cpuMs());
        await pm.start();
        await sendManyAll(ph, f.events);
        const cost = await pm.stop(f.events, await waitPhase(ph, 120_000));
        log(`engine sendMany, ${n} worker process(es): ${cost.perSec} events/s (${cost.wallMs} ms, node CPU ${cost.nodeCpuMsPer1k} ms/1k incl. workers)`);
        const latency = await latencyPhase(`latency, ${n} worker process(es)`, f.seconds / 2, pm);
        procRows.push({ processes: n, ...cost, latency: roundStats(latency) });
      } finally {
        await procs.stop();
      }
    }

    // Correctness: every checked key's committed seq (and counter) equals the events sent to it.
    let mismatches = 0;
    const all = [...keys, ...(f.warmup > 0 ? warmKeys : [])];
    const checked = f.verify > 0 && f.verify < all.length ? all.filter((_, i) => i % Math.ceil(all.length / f.verify) === 0) : all;
    const t0 = performance.now();
    for (let i = 0; i < checked.length; i += 200) {
      await Promise.all(
        checked.slice(i, i + 200).map(async (key) => {
          const want = sentTo.get(key) ?? 0;
          const state = await client.get(BENCH_TYPE, key);
          const seq = state?.seq ?? 0;
          const n = (state?.context as { n?: number } | undefined)?.n ?? 0;
          if (seq !== want || n !== want) {
            mismatches++;
            problem(`get(${key}): seq ${seq}, n ${n}, sent ${want}`);
          }
        }),
      );
    }
    log(`engine correctness: ${checked.length} keys checked with get() in ${Math.round(performance.now() - t0)} ms, ${mismatches} mismatches, ${outputOrderViolations} output order violations, ${duplicateOutputs} duplicate outputs`);

    return {
      send: sendRow,
      sendMany: sendManyRow,
      latency: latencyRow,
      procs: procRows,
      correctness: {
        keysChecked: checked.length,
        stateMismatches: mismatches,
        outputOrderViolations,
        duplicateOutputs,
        sendErrors,
        systemErrors,
        deadLettered,
        firstProblems: problems,
      },
    };
  } finally {
    if (problems.length > 0) log(`engine problems (first ${problems.length}):\n  ${problems.join('\n  ')}`);
    await client.close();
    await worker.close();
    await readerDone;
  }
}

// ---------------------------------------------------------------------------
// raw BullMQ

interface RawJob {
  t: number;
  k: string;
  /** Sent in a latency warm-up: not recorded. */
  w?: 1;
}

interface RawResult {
  ordered: Cost;
  unordered?: Cost & { concurrency: number };
  latencyProcessed: LatencyStats;
  latencyCompleted: LatencyStats & { schedLagP99: number };
  latencyCost: Cost;
  procs: (Cost & { processes: number })[];
}

async function runRaw(f: Flags, url: string, admin: Redis, ns: string): Promise<RawResult> {
  const connOpts = { maxRetriesPerRequest: null, enableReadyCheck: true } as const;
  const producerConn = new Redis(url, connOpts);
  const workerConn = new Redis(url, connOpts);
  const jobOpts = { removeOnComplete: true, removeOnFail: false, attempts: 1 };
  const queues = Array.from({ length: f.partitions }, (_, p) => new Queue<RawJob>('q', { connection: producerConn, prefix: `{${ns}:${p}}`, defaultJobOptions: jobOpts }));
  for (const q of queues) q.on('error', (err) => log('raw queue error', err));
  const keys = Array.from({ length: f.keys }, (_, i) => `k${i}`);
  const partOf = keys.map((k) => partitionOf(BENCH_TYPE, k, f.partitions));
  let completed = 0;
  let processedLat: number[] | undefined;
  let completedLat: number[] | undefined;
  let workers: Worker<RawJob>[] = [];

  const startWorkers = async (concurrency: number) => {
    workers = queues.map(
      (_, p) =>
        new Worker<RawJob>(
          'q',
          async (job: Job<RawJob>) => {
            if (!job.data.w) processedLat?.push(performance.now() - job.data.t);
          },
          { connection: workerConn, prefix: `{${ns}:${p}}`, concurrency },
        ),
    );
    for (const w of workers) {
      w.on('error', (err) => log('raw worker error', err));
      w.on('failed', (job, err) => log('raw job failed', job?.id, err));
      w.on('completed', (job: Job<RawJob>) => {
        completed++;
        if (!job.data.w) completedLat?.push(performance.now() - job.data.t);
      });
    }
    await Promise.all(workers.map((w) => w.waitUntilReady()));
  };
  const stopWorkers = async () => {
    await Promise.all(workers.map((w) => w.close()));
    workers = [];
  };
  /** N jobs with addBulk: windows of `window` jobs, one addBulk per queue per chunk. */
  const addAll = async (n: number) => {
    for (let i = 0; i < n; i += f.window) {
      const m = Math.min(f.window, n - i);
      const calls: Promise<unknown>[] = [];
      for (let c = 0; c < m; c += f.chunk) {
        const byQueue = new Map<number, { name: string; data: RawJob }[]>();
        for (let w = c; w < Math.min(m, c + f.chunk); w++) {
          const ki = (i + w) % keys.length;
          const p = partOf[ki]!;
          let list = byQueue.get(p);
          if (!list) byQueue.set(p, (list = []));
          list.push({ name: 'inc', data: { t: performance.now(), k: keys[ki]! } });
        }
        for (const [p, list] of byQueue) calls.push(queues[p]!.addBulk(list));
      }
      await Promise.all(calls);
    }
  };

  try {
    const meter = new CostMeter(admin);
    await startWorkers(1);
    if (f.warmup > 0) {
      completed = 0;
      await addAll(f.warmup);
      await waitFor('raw warm-up', () => completed, f.warmup, 60_000);
      log(`raw warm-up: ${f.warmup} jobs done`);
    }

    // 2a. The serial-lane equivalent: one Worker per queue, concurrency 1.
    completed = 0;
    await meter.start();
    await addAll(f.events);
    const ordered = await meter.stop(f.events, await waitFor('raw ordered', () => completed, f.events, 120_000));
    log(`raw BullMQ conc 1:  ${ordered.perSec} jobs/s (${ordered.wallMs} ms)`);

    // 3. Latency at the same offered rate: one add() per event, after the same warm-up as the engine's.
    const inflight: Promise<unknown>[] = [];
    await collectGarbage();
    if (f.latencyWarmup > 0) {
      await offeredLoad(f.rate, f.latencyWarmup, (i) => {
        const ki = (i * 7919 + 1) % keys.length;
        inflight.push(queues[partOf[ki]!]!.add('inc', { t: performance.now(), k: keys[ki]!, w: 1 }));
      });
    }
    processedLat = [];
    completedLat = [];
    await meter.start();
    const { sent, lag } = await offeredLoad(f.rate, f.seconds, (i) => {
      const ki = (i * 7919) % keys.length;
      inflight.push(queues[partOf[ki]!]!.add('inc', { t: performance.now(), k: keys[ki]! }));
    });
    await Promise.all(inflight);
    const latencyCost = await meter.stop(sent, await waitFor('raw latency', () => completedLat?.length ?? 0, sent, 60_000));
    const latencyProcessed = latencyStats(processedLat);
    const latencyCompleted = { ...latencyStats(completedLat), schedLagP99: r2(lag.p99) };
    processedLat = completedLat = undefined;
    log(`raw BullMQ latency @${f.rate}/s: add→processed p50 ${r2(latencyProcessed.p50)} p99 ${r2(latencyProcessed.p99)} ms; add→completed p50 ${r2(latencyCompleted.p50)} p99 ${r2(latencyCompleted.p99)} ms`);

    // 2b. Optional: the same with `unordered` concurrency per queue (no per-key order any more).
    let unordered: RawResult['unordered'];
    if (f.unordered > 0) {
      // Capped (it is a side row): keeps the whole run under ~3 minutes on a busy 2-core machine.
      const n = Math.min(f.events, 30_000);
      await stopWorkers();
      await startWorkers(f.unordered);
      completed = 0;
      await meter.start();
      await addAll(n);
      const cost = await meter.stop(n, await waitFor('raw unordered', () => completed, n, 120_000));
      unordered = { ...cost, concurrency: f.unordered };
      log(`raw BullMQ conc ${f.unordered}: ${cost.perSec} jobs/s (${cost.wallMs} ms)`);
    }
    // 4. The workers in separate processes: each process runs the Workers of its share of the
    // queues (one consumer per queue, concurrency 1: per-key order kept), after its own warm-up.
    const procs: RawResult['procs'] = [];
    if (f.procs.length > 0) await stopWorkers();
    for (const n of f.procs) {
      const wp = new WorkerProcs(n, 'raw', { BENCH_NS: ns, BENCH_PARTITIONS: String(f.partitions) });
      try {
        await waitFor(`raw ${n} worker processes: ready`, () => wp.owned, f.partitions, 60_000);
        let base = wp.completed;
        await addAll(f.warmup);
        await waitFor(`raw ${n} processes warm-up`, () => wp.completed - base, f.warmup, 60_000);
        const pm = new CostMeter(admin, () => wp.cpuMs());
        base = wp.completed;
        await pm.start();
        await addAll(f.events);
        const cost = await pm.stop(f.events, await waitFor(`raw ${n} processes`, () => wp.completed - base, f.events, 120_000));
        procs.push({ processes: n, ...cost });
        log(`raw BullMQ conc 1, ${n} worker process(es): ${cost.perSec} jobs/s (${cost.wallMs} ms)`);
      } finally {
        await wp.stop();
      }
    }
    return { ordered, unordered, latencyProcessed, latencyCompleted, latencyCost, procs };
  } finally {
    await stopWorkers();
    await Promise.allSettled(queues.map((q) => q.obliterate({ force: true })));
    await Promise.allSettled(queues.map((q) => q.close()));
    producerConn.disconnect();
    workerConn.disconnect();
  }
}

// ---------------------------------------------------------------------------
// main

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`;
  const sep = `|${widths.map((w, c) => (c === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|')}|`;
  return [line(rows[0]!), sep, ...rows.slice(1).map(line)].join('\n');
}

/** The engine revision measured: HEAD, and whether engine sources differ from it in the work tree. */
function engineRevision(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: `${__dirname}/..`, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const head = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--', 'index.ts', 'actors', 'mailbox', 'persistence', 'supervisors');
    return dirty ? `${head}+dirty(${dirty.split('\n').length} files)` : head;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<number> {
  const f = parseFlags(process.argv.slice(2));
  if (f.json) console.log = console.error; // stdout is for the JSON object only
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set (run through `npm run bench`, or set REDIS_URL=redis://127.0.0.1:6379)');
  const admin = new Redis(url, { maxRetriesPerRequest: null });
  const suffix = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const engineNs = `bench-${suffix}`;
  const rawNs = `bench-raw-${suffix}`;
  const started = performance.now();
  const loadavgStart = os.loadavg().map(r2);
  const revision = engineRevision();
  const info = await admin.info('server');
  const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
  const appendonly = ((await admin.config('GET', 'appendonly')) as string[])[1] ?? '?';
  housekeeping = await AofHousekeeping.setUp(admin, appendonly);
  log(
    housekeeping.active
      ? 'AOF housekeeping: automatic rewrites put off to 1 GB; the AOF is compacted before each measured phase'
      : `AOF housekeeping: none (${appendonly === 'yes' ? 'a Redis this run did not start: its settings are left alone' : 'no AOF'})`,
  );
  log(`node ${process.version} (flags: ${nodeFlags().join(' ') || 'none'}), ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), redis ${redisVersion} (appendonly ${appendonly}), load ${os.loadavg().map(r2).join(' ')}`);
  log(`events ${f.events}, keys ${f.keys}, partitions ${f.partitions}, window ${f.window}, chunk ${f.chunk}, latency ${f.rate}/s for ${f.seconds} s`);

  let engine: EngineResult | undefined;
  let raw: RawResult | undefined;
  try {
    if (f.only !== 'raw') engine = await runEngine(f, url, admin, engineNs);
    if (f.only !== 'engine') raw = await runRaw(f, url, admin, rawNs);
    await housekeeping.observe();
  } finally {
    const n = (await deleteNamespace(admin, engineNs)) + (await deleteNamespace(admin, rawNs));
    log(`deleted ${n} bench keys`);
    admin.disconnect();
  }
  if (!engine || !raw) {
    // --only: the side's own figures, no ratios.
    process.stdout.write(JSON.stringify({ engine, raw, node: process.version, nodeFlags: nodeFlags(), date: new Date().toISOString() }, null, f.json ? undefined : 2) + '\n');
    return engine && !engineCorrect(engine) ? 1 : 0;
  }

  const engineEventsPerSec = engine.sendMany.perSec;
  const bullmqNoopJobsPerSec = raw.ordered.perSec;
  const c = engine.correctness;
  const result = {
    engineEventsPerSec,
    bullmqNoopJobsPerSec,
    throughputRatio: r2(engineEventsPerSec / bullmqNoopJobsPerSec),
    engineP50Ms: r2(engine.latency.committed.p50),
    engineP99Ms: r2(engine.latency.committed.p99),
    bullmqP50Ms: r2(raw.latencyCompleted.p50),
    bullmqP99Ms: r2(raw.latencyCompleted.p99),
    latencyRatio: r2(engine.latency.committed.p99 / raw.latencyCompleted.p99),
    engineReadP50Ms: r2(engine.latency.p50),
    engineReadP99Ms: r2(engine.latency.p99),
    latencyRatioRead: r2(engine.latency.p99 / raw.latencyCompleted.p99),
    engineSendEventsPerSec: engine.send.perSec,
    throughputRatioSend: r2(engine.send.perSec / bullmqNoopJobsPerSec),
    bullmqProcessedP50Ms: r2(raw.latencyProcessed.p50),
    bullmqProcessedP99Ms: r2(raw.latencyProcessed.p99),
    bullmqUnorderedJobsPerSec: raw.unordered?.perSec,
    /** Workers in separate processes: engine sendMany vs raw BullMQ conc 1, both with the same number of worker processes. */
    processes: engine.procs.map((e) => {
      const r = raw.procs.find((x) => x.processes === e.processes);
      return {
        processes: e.processes,
        engineEventsPerSec: e.perSec,
        bullmqNoopJobsPerSec: r?.perSec,
        ratioToSameProcesses: r ? r2(e.perSec / r.perSec) : undefined,
        ratioToInProcessBullmq: r2(e.perSec / bullmqNoopJobsPerSec),
        engineP50Ms: e.latency.p50,
        engineP99Ms: e.latency.p99,
        latencyRatio: r2(e.latency.p99 / raw.latencyCompleted.p99),
      };
    }),
    correct: engineCorrect(engine),
    correctness: c,
    engine: { send: engine.send, sendMany: engine.sendMany, latency: roundStats(engine.latency), latencyCommitted: roundStats(engine.latency.committed), latencyCost: engine.latency.cost, procs: engine.procs },
    bullmq: {
      latencyCost: raw.latencyCost,
      ordered: raw.ordered,
      procs: raw.procs,
      unordered: raw.unordered,
      latencyProcessed: roundStats(raw.latencyProcessed),
      latencyCompleted: roundStats(raw.latencyCompleted),
    },
    definitions: {
      engineEventsPerSec: 'sendMany chunks (like addBulk), 1st send -> last output read by outputs()',
      engineSendEventsPerSec: 'send() windows, 1st send -> last output read by outputs()',
      bullmqNoopJobsPerSec: `addBulk chunks, 1 Worker per queue concurrency 1, no-op, 1st add -> last 'completed' event`,
      engineLatency: "send() call -> the worker's commit of the event returned (its 'committed' event, same process): engineP50Ms/engineP99Ms/latencyRatio",
      engineReadLatency: 'send() call -> output read by an outputs() reader (the commit plus the output read): engineRead*, latencyRatioRead, and the worker-process rows',
      bullmqLatency: `add() call -> 'completed' event of the worker (add->processor start is bullmqProcessed*)`,
    },
    setup: {
      engine: 'one worker system (worker: true) + one producer/reader system (worker: false), same process',
      events: f.events,
      keys: f.keys,
      partitions: f.partitions,
      window: f.window,
      chunk: f.chunk,
      rate: f.rate,
      seconds: f.seconds,
      warmup: f.warmup,
    },
    engineRevision: revision,
    node: process.version,
    nodeFlags: nodeFlags(),
    nproc: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    redisVersion,
    redisAppendonly: appendonly,
    aofHousekeeping: { active: housekeeping.active, compactions: housekeeping.compactions, rewritesByRedis: housekeeping.rewritesByRedis, largestAofMB: r1(housekeeping.largestAofBytes / 1e6) },
    loadavgStart,
    loadavgEnd: os.loadavg().map(r2),
    date: new Date().toISOString(),
    runtimeSec: r1((performance.now() - started) / 1000),
  };

  if (f.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    const e = engine;
    const tp = (name: string, x: Cost, extra = '') => [name, String(x.items), String(x.wallMs), String(x.perSec), String(x.nodeCpuMsPer1k), String(x.redisCpuMsPer1k), String(x.nodeCpuPct), String(x.redisCpuPct), String(x.redisCmdsPerItem), extra];
    const out = [
      `keyflow bench ${result.date}  engine ${revision}  load ${loadavgStart.join(' ')} → ${result.loadavgEnd.join(' ')}  node ${result.node}  ${result.nproc} CPUs  redis ${redisVersion} (appendonly ${appendonly})`,
      `${f.events} events over ${f.keys} keys, ${f.partitions} partitions; engine = worker system + producer/reader system in one process; in the "worker process(es)" rows the workers run in that many child processes and this process only produces and reads (node CPU includes the children)`,
      '',
      table([
        ['throughput', 'events', 'wall ms', 'per s', 'node CPU ms/1k', 'redis CPU ms/1k', 'node CPU %', 'redis CPU %', 'redis cmds/event', 'note'],
        tp(`engine send() (windows of ${f.window})`, e.send, `sends resolved at ${e.send.sendMs} ms`),
        tp(`engine sendMany (${f.chunk}/call)`, e.sendMany, `sends resolved at ${e.sendMany.sendMs} ms`),
        tp('raw BullMQ addBulk, conc 1/queue', raw.ordered, 'no-op'),
        ...(raw.unordered ? [tp(`raw BullMQ addBulk, conc ${raw.unordered.concurrency}/queue`, raw.unordered, 'no-op, NO per-key order')] : []),
        ...e.procs.flatMap((row) => {
          const r = raw.procs.find((x) => x.processes === row.processes);
          const ratio = r ? `ratio ${r2(row.perSec / r.perSec)} to raw with ${row.processes} process(es)` : '';
          return [
            tp(`engine sendMany, ${row.processes} worker process(es)`, row, ratio),
            ...(r ? [tp(`raw BullMQ conc 1, ${r.processes} worker process(es)`, r, 'no-op')] : []),
          ];
        }),
      ]),
      '',
      table([
        [`latency @ ${f.rate}/s for ${f.seconds} s (ms)`, 'n', 'p50', 'p90', 'p99', 'max', 'node CPU %', 'redis CPU %', 'redis cmds/event'],
        ['engine send → committed', ...statCells(e.latency.committed), ...costCells(e.latency.cost)],
        ['engine send → committed + output read', ...statCells(e.latency), '', '', ''],
        ...e.procs.map((row) => [`engine, ${row.processes} worker process(es) (${f.seconds / 2} s), → output read`, ...statCells(row.latency), '', '', '']),
        ['raw BullMQ add → processor runs', ...statCells(raw.latencyProcessed), '', '', ''],
        ['raw BullMQ add → completed event', ...statCells(raw.latencyCompleted), ...costCells(raw.latencyCost)],
      ]),
      '',
      `throughputRatio (engine sendMany / raw conc 1) = ${result.throughputRatio}   (send(): ${result.throughputRatioSend})`,
      `latencyRatio (engine send→committed p99 / raw add→completed p99) = ${result.latencyRatio}   (to the output read: ${result.latencyRatioRead})`,
      `correctness: ${c.keysChecked} keys checked, ${c.stateMismatches} state mismatches, ${c.outputOrderViolations} output order violations, ${c.duplicateOutputs} duplicate outputs, ${c.sendErrors} send errors, ${c.systemErrors} system errors, ${c.deadLettered} dead letters`,
      `runtime ${result.runtimeSec} s`,
    ];
    out.push('(redis cmds/event counts the commands run inside Lua scripts too; CPU % is of one core over the wall time)');
    process.stdout.write(out.join('\n') + '\n');
  }
  return result.correct ? 0 : 1;
}

function engineCorrect(e: EngineResult): boolean {
  const c = e.correctness;
  return c.stateMismatches === 0 && c.outputOrderViolations === 0 && c.duplicateOutputs === 0 && c.sendErrors === 0 && c.deadLettered === 0;
}

function roundStats(s: LatencyStats): LatencyStats {
  return { count: s.count, p50: r2(s.p50), p90: r2(s.p90), p99: r2(s.p99), max: r2(s.max), mean: r2(s.mean) };
}

function costCells(c: Cost): string[] {
  return [String(c.nodeCpuPct), String(c.redisCpuPct), String(c.redisCmdsPerItem)];
}

function statCells(s: LatencyStats): string[] {
  return [String(s.count), String(r2(s.p50)), String(r2(s.p90)), String(r2(s.p99)), String(r2(s.max))];
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error('[bench] failed:', err?.stack ?? err);
    process.exit(2);
  },
);
