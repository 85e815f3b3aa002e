/**
 * Tools of the fraud-detection specs: transactions built by hand, detectors on
 * a fresh namespace of the test Redis (closed and deleted after each test),
 * and the outputs of a detector once everything submitted is committed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createFraudDetector, type FraudDetector, type FraudDetectorOptions, type FraudOutput, type Transaction } from '../../../apps/fraud-detection';
import { cleanupNamespace, redisUrl, uniqueNamespace } from '../../helpers/redis';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
/** Event time of the hand-made sequences. */
export const T0 = Date.UTC(2026, 2, 2, 9);
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const PLACES = {
  paris: { lat: 48.8566, lng: 2.3522, country: 'FR' },
  parisSuburb: { lat: 48.8, lng: 2.45, country: 'FR' },
  london: { lat: 51.5074, lng: -0.1278, country: 'GB' },
  newYork: { lat: 40.7128, lng: -74.006, country: 'US' },
  lyon: { lat: 45.764, lng: 4.8357, country: 'FR' },
};

let txCounter = 0;

/** A transaction of `accountId` at T0 + `at` ms, in Paris, 20 EUR unless overridden. */
export function tx(accountId: string, at: number, over: Partial<Transaction> = {}): Transaction {
  txCounter++;
  return { id: `t${txCounter}`, accountId, amount: 20, currency: 'EUR', ts: T0 + at, ...PLACES.paris, merchant: 'cafe-1', ...over };
}

/** A temporary directory for the describe block: `dir()` inside tests; removed afterwards. */
export function tempDir(prefix: string): () => string {
  let dir = '';
  beforeAll(async () => {
    dir = await fs.mkdtemp(join(os.tmpdir(), prefix));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });
  return () => dir;
}

/** Detectors on fresh namespaces, closed and deleted after each test. */
export function detectors() {
  const open: FraudDetector[] = [];
  afterEach(async () => {
    for (const d of open.splice(0)) {
      await d.close();
      await cleanupNamespace(redisUrl(), d.namespace);
    }
  });
  return {
    async create(opts: Partial<FraudDetectorOptions> = {}): Promise<FraudDetector> {
      const detector = await createFraudDetector({ redis: redisUrl(), namespace: uniqueNamespace('fraud'), partitions: 4, system: { leaseTtlMs: 2_000 }, ...opts });
      open.push(detector);
      return detector;
    },
  };
}

/**
 * Every output of the detector, once all that was submitted is committed:
 * drain, then a bounded read from the start up to what is committed then.
 */
export async function outputsOf(detector: FraudDetector): Promise<FraudOutput[]> {
  await detector.drain({ timeoutMs: 30_000 });
  const out: FraudOutput[] = [];
  for await (const { output } of detector.outputs({ from: 'start', until: 'now' })) out.push(output);
  return out;
}

export const alertsIn = (outputs: FraudOutput[]) => outputs.filter((o) => o.type === 'fraud.alert');

// ---------------------------------------------------------------------------
// The command line as a child process (what `npm run fraud` runs, without the bootstrap)

export const ROOT = join(__dirname, '..', '..', '..');
export const CLI = join(ROOT, 'apps', 'fraud-detection', 'cli.ts');
export const GENERATE = join(ROOT, 'apps', 'fraud-detection', 'generate.ts');

export interface Proc {
  child: ChildProcess;
  out: string[];
  err: string[];
  exit: Promise<number>;
}

/** Run a TypeScript entry with `node --import tsx` against the test Redis. */
export function runTs(entry: string, args: string[], opts: { stdin?: string; cwd?: string } = {}): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, REDIS_URL: redisUrl(), INIT_CWD: opts.cwd ?? ROOT, NO_COLOR: '1' },
    stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  const err: string[] = [];
  child.stdout!.on('data', (d: Buffer) => out.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => err.push(d.toString()));
  if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
  const exit = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : 128))));
  return { child, out, err, exit };
}

/** Wait for `check` to hold, polling; fails with `what` after `timeoutMs`. */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}
