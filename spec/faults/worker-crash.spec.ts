/**
 * Exactly-once under kill -9: a worker child process is killed at random
 * moments while a producer sends thousands of events over many keys (some of
 * them twice, with the same id). A new worker takes over after the lease TTL
 * and finishes. Afterwards every key's state equals a sequential model of what
 * was sent, in send order, each event applied once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createActorSystem, type ActorSystem } from '../../index';
import { account } from '../../apps/bank/account-machine';
import { cleanupNamespace, redisUrl, uniqueNamespace } from '../helpers/redis';
import { collectOutputs } from '../helpers/system';

const WORKER = join(__dirname, 'fixtures', 'bank-worker.ts');
const KEYS = 100;
const EVENTS = 4_000;
const KILLS = 5;

interface Sent {
  key: string;
  id: string;
  event: { type: 'deposit' | 'withdraw'; amount: number };
}

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function startWorker(ns: string, log: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
    env: { ...process.env, KEYFLOW_NS: ns, KEYFLOW_LEASE_TTL_MS: '1000', KEYFLOW_PARTITIONS: '8' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => log.push(...d.toString().trim().split('\n')));
  child.stderr!.on('data', (d: Buffer) => log.push(`stderr: ${d.toString().trim()}`));
  return child;
}

function waitFor(log: string[], line: string, from: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = () => {
      if (log.slice(from).includes(line)) return resolve();
      if (Date.now() > deadline) return reject(new Error(`worker did not print "${line}" in ${timeoutMs} ms:\n${log.slice(-20).join('\n')}`));
      setTimeout(check, 20);
    };
    check();
  });
}

describe('faults: worker killed with kill -9', () => {
  const ns = uniqueNamespace('crash');
  let producer: ActorSystem;
  let worker: ChildProcess | undefined;
  const log: string[] = [];

  afterAll(async () => {
    worker?.kill('SIGKILL');
    await producer?.close();
    await cleanupNamespace(redisUrl(), ns);
  });

  it('applies every accepted event exactly once and in order, across kills at random moments', async () => {
    const random = rng(20261120);
    producer = await createActorSystem({ redis: redisUrl(), namespace: ns, partitions: 8, actors: [account], worker: false });
    worker = startWorker(ns, log);
    await waitFor(log, 'ready', 0, 20_000);

    // The stream: deposits and withdrawals (a withdrawal above the balance is refused,
    // so the outcome depends on order), plus re-sends of earlier events with their id.
    const sent: Sent[] = [];
    const keys = Array.from({ length: KEYS }, (_, i) => `acct-${i}`);
    for (let i = 0; i < EVENTS; i++) {
      const key = keys[Math.floor(random() * KEYS)]!;
      const type = random() < 0.6 ? 'deposit' : 'withdraw';
      sent.push({ key, id: `ev-${i}`, event: { type, amount: 1 + Math.floor(random() * 50) } });
    }
    const killAt = new Set(Array.from({ length: KILLS }, () => Math.floor(random() * (EVENTS / 100))));
    let kills = 0;
    let duplicates = 0;
    for (let chunk = 0; chunk < EVENTS / 100; chunk++) {
      const batch = sent.slice(chunk * 100, chunk * 100 + 100);
      await Promise.all(batch.map((s) => producer.send('account', s.key, s.event, { id: s.id })));
      // Duplicates of already-sent events (same id): must be applied once.
      const dups = batch.filter(() => random() < 0.05);
      await Promise.all(dups.map((s) => producer.send('account', s.key, s.event, { id: s.id })));
      duplicates += dups.length;
      if (killAt.has(chunk)) {
        // Kill at a random moment within the next few milliseconds of processing.
        await new Promise((r) => setTimeout(r, Math.floor(random() * 40)));
        worker.kill('SIGKILL');
        kills++;
        const from = log.length;
        worker = startWorker(ns, log);
        await waitFor(log, 'ready', from, 20_000);
      } else {
        await new Promise((r) => setTimeout(r, 15));
      }
    }
    await producer.drain({ timeoutMs: 60_000 });

    // The model: each key's events in send order, each once.
    const model = new Map<string, { balance: number; applied: number; rejected: number; ids: string[] }>();
    for (const s of sent) {
      const m = model.get(s.key) ?? { balance: 0, applied: 0, rejected: 0, ids: [] };
      if (s.event.type === 'deposit') {
        m.balance += s.event.amount;
        m.applied++;
      } else if (s.event.amount <= m.balance) {
        m.balance -= s.event.amount;
        m.applied++;
      } else m.rejected++;
      m.ids.push(s.id);
      model.set(s.key, m);
    }
    let lost = 0;
    let duplicated = 0;
    let mismatched = 0;
    for (const [key, m] of model) {
      const state = await producer.get('account', key);
      const journal = await producer.journal('account', key);
      expect(journal.map((e) => e.seq)).toEqual(Array.from({ length: journal.length }, (_, i) => i + 1));
      const ids = journal.map((e) => e.id);
      lost += m.ids.filter((id) => !ids.includes(id)).length;
      duplicated += ids.length - new Set(ids).size;
      expect(ids).toEqual(m.ids);
      if (state?.context.balance !== m.balance || state?.context.rejected !== m.rejected) mismatched++;
      expect(state?.context).toMatchObject({ balance: m.balance, applied: m.applied, rejected: m.rejected });
      expect(state?.seq).toBe(m.ids.length);
      expect(await producer.replay('account', key, { toSeq: m.ids.length })).toEqual(state);
    }
    const rejected = [...model.values()].reduce((n, m) => n + m.rejected, 0);
    const outputs = await collectOutputs(producer, rejected + 1, 3_000);
    expect(outputs).toHaveLength(rejected);
    expect(new Set(outputs.map((o) => o.id)).size).toBe(rejected);
    const epochs = log.filter((l) => l.startsWith('lease ')).length;
    process.stdout.write(
      `worker-crash: events=${EVENTS} duplicates-sent=${duplicates} keys=${KEYS} kills=${kills} lease-acquisitions=${epochs} lost=${lost} duplicated=${duplicated} mismatched=${mismatched} outputs=${outputs.length}\n`,
    );
    expect(kills).toBeGreaterThanOrEqual(3);
    expect(lost + duplicated + mismatched).toBe(0);
  }, 180_000);
});
