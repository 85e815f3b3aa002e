/**
 * Exactly-once under kill -9: a worker child process is killed at random
 * moments while a producer sends thousands of events over many keys (some of
 * them twice, with the same id). A new worker takes over after the lease TTL
 * and finishes. Afterwards every key's state equals a sequential model of what
 * was sent, in send order, each event applied once.
 */
import { createActorSystem, type ActorSystem } from '../../index';
import { account } from '../../apps/bank/account-machine';
import { rng } from '../helpers/random';
import { cleanupNamespace, redisUrl, uniqueNamespace } from '../helpers/redis';
import { sleep } from '../helpers/time';
import { expectExactlyOnce, verifyBank, verifyOutputs, type BankEvent } from './fixtures/bank-model';
import { BankWorkers } from './fixtures/worker-proc';

const KEYS = 100;
const EVENTS = 4_000;
const KILLS = 5;

describe('faults: worker killed with kill -9', () => {
  const ns = uniqueNamespace('crash');
  let producer: ActorSystem;
  const workers = new BankWorkers({ redisUrl: redisUrl(), namespace: ns, partitions: 8, leaseTtlMs: 1_000 });
  let passed = false;

  afterAll(async () => {
    await workers.close(passed, 'worker-crash');
    await producer?.close();
    await cleanupNamespace(redisUrl(), ns);
  });

  it('applies every accepted event exactly once and in order, across kills at random moments', async () => {
    const random = rng(20261120);
    producer = await createActorSystem({ redis: redisUrl(), namespace: ns, partitions: 8, actors: [account], worker: false });
    let worker = workers.start();
    await worker.ready(20_000);

    // The stream: deposits and withdrawals (a withdrawal above the balance is refused,
    // so the outcome depends on order), plus re-sends of earlier events with their id.
    const sent: BankEvent[] = [];
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
        await sleep(Math.floor(random() * 40));
        worker = await workers.replace(worker);
        kills++;
      } else {
        await sleep(15);
      }
    }
    await producer.drain({ timeoutMs: 60_000 });

    // The model: each key's events in send order (every send() resolved), each once.
    const accepted = new Map<string, BankEvent[]>();
    for (const s of sent) accepted.set(s.key, [...(accepted.get(s.key) ?? []), s]);
    const v = await verifyBank(producer, accepted);
    const out = await verifyOutputs(producer, v.expectedOutputs);
    const epochs = workers.acquisitions();
    process.stdout.write(
      `worker-crash: events=${EVENTS} duplicates-sent=${duplicates} keys=${KEYS} kills=${kills} lease-acquisitions=${epochs} lost=${v.lost} duplicated=${v.duplicated} mismatched=${v.mismatched} outputs=${out.outputs}\n`,
    );
    expect(v.events).toBe(EVENTS);
    expectExactlyOnce(v, out);
    expect(kills).toBeGreaterThanOrEqual(3);
    passed = true;
  }, 180_000);
});
