/**
 * Tools of the ride-matching service specs: run the real service — the same
 * command line as `npm start`, as a child process with its own worker
 * processes — on a fresh namespace; call its API; follow its events; read
 * its namespace with a reader actor system; fingerprint what the namespace
 * holds in Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { createActorSystem, type ActorSystem } from '../../../index';
import { driver } from '../../../apps/ride-matching/driver-machine';
import { readEvents } from '../../../apps/ride-matching/event-stream';
import { ride } from '../../../apps/ride-matching/ride-machine';
import { PartitionKeys } from '../../../persistence';
import { cleanupNamespace, redisUrl, uniqueNamespace } from '../../helpers/redis';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const MAIN = join(__dirname, '..', '..', '..', 'apps', 'main.ts');

export interface ServiceProcess {
  url: string;
  namespace: string;
  partitions: number;
  child: ChildProcess;
  /** What the service printed (stdout and stderr), for failure messages. */
  output: string[];
  /** A reader of the namespace (worker: false): journals, states, outputs. */
  reader: ActorSystem;
  /** SIGTERM, wait for the exit, close the reader, delete the namespace. */
  stop(): Promise<void>;
}

/**
 * `apps/main.ts --port 0 --no-simulator --quiet` plus `flags`, on a unique
 * namespace; resolves once it printed its URL and that every partition is held.
 */
export async function startServiceProcess(flags: Record<string, string | number | boolean> = {}, timeoutMs = 60_000): Promise<ServiceProcess> {
  const namespace = uniqueNamespace('rm');
  const all: Record<string, string | number | boolean> = { port: 0, simulator: false, quiet: true, namespace, workers: 1, partitions: 4, ...flags };
  const args: string[] = [];
  for (const [k, v] of Object.entries(all)) {
    const flag = `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    if (k === 'simulator') {
      if (v === false) args.push('--no-simulator');
    } else if (v === true) args.push(flag);
    else if (v === false) args.push(`--no-${flag.slice(2)}`);
    else args.push(flag, String(v));
  }
  const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: redisUrl(), NO_COLOR: '1' };
  for (const k of ['PORT', 'HOST', 'API_KEY', 'MATCH_RADIUS_KM', 'OFFER_TIMEOUT_MS', 'MATCH_TIMEOUT_MS', 'MATCH_RETRY_MS']) delete env[k];
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  let url: string | undefined;
  let ready = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      output.push(line);
      url ??= /open (http:\/\/\S+)/.exec(line)?.[1];
      if (/ready: every partition is held/.test(line)) ready = true;
    });
  }
  const deadline = Date.now() + timeoutMs;
  while (!(url && ready)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the service did not start (${child.exitCode !== null ? `exit ${child.exitCode}` : `${timeoutMs} ms`}):\n${output.join('\n')}`);
    }
    await sleep(20);
  }
  const reader = await createActorSystem({ redis: redisUrl(), namespace, partitions: Number(all.partitions), actors: [driver, ride], worker: false });
  return {
    url: url!,
    namespace,
    partitions: Number(all.partitions),
    child,
    output,
    reader,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      await reader.close();
      await cleanupNamespace(redisUrl(), namespace);
    },
  };
}

export interface Answer {
  status: number;
  json: Record<string, unknown>;
  headers: Headers;
}

/** An HTTP client of the service. `body`: an object (sent as JSON) or a raw string with its own content type. */
export function client(base: string, defaults: Record<string, string> = {}) {
  return async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> => {
    const h: Record<string, string> = { ...defaults, ...headers };
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      h['content-type'] ??= 'application/json';
    }
    const res = await fetch(base + path, { method, headers: h, body: payload });
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = { text };
    }
    return { status: res.status, json, headers: res.headers };
  };
}

export interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

/** Follows GET /events; `waitFor` resolves with the first event (seen so far or later) matching. */
export function followEvents(base: string) {
  const events: SseEvent[] = [];
  const abort = new AbortController();
  const done = (async () => {
    await readEvents(`${base}/events`, abort.signal, (event, data) => events.push({ event, data: data as Record<string, unknown> }));
  })().catch(() => {});
  return {
    events,
    async waitFor(what: string, pred: (e: SseEvent) => boolean, timeoutMs = 10_000): Promise<SseEvent> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = events.find(pred);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no event ${what} within ${timeoutMs} ms; got ${events.map((e) => `${e.event}:${String((e.data.event as { type?: string } | undefined)?.type ?? e.data.type ?? '')}`).slice(-20).join(' ')}`);
        await sleep(20);
      }
    },
    async close() {
      abort.abort();
      await done;
    },
  };
}

/**
 * What the namespace holds, as one comparable value: every journal and its
 * length, the jobs ever added to each partition's queue, the outputs and the
 * de-dup records. Any event accepted (sent, journaled, applied) changes it.
 */
export async function fingerprint(namespace: string, partitions: number): Promise<Record<string, number>> {
  const redis = new Redis(redisUrl());
  try {
    const out: Record<string, number> = {};
    for (let p = 0; p < partitions; p++) {
      const keys = new PartitionKeys(namespace, p);
      out[`${p}:jobs`] = Number((await redis.get(`${keys.tag}:q:id`)) ?? 0);
      out[`${p}:outputs`] = await redis.xlen(keys.outbox);
      out[`${p}:dedup`] = await redis.zcard(keys.dedup);
      let cursor = '0';
      do {
        const [next, found] = await redis.scan(cursor, 'MATCH', `${keys.prefix}j:*`, 'COUNT', 1000);
        cursor = next;
        for (const k of found) out[k] = await redis.llen(k);
      } while (cursor !== '0');
    }
    return out;
  } finally {
    redis.disconnect();
  }
}

/** Poll `read` until `ok`; the last value is in the error. */
export async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms; last ${JSON.stringify(v)}`);
    await sleep(25);
  }
}
