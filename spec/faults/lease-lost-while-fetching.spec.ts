/**
 * A worker whose lease is taken over while its partition loop waits for jobs.
 *
 * A regression test. Found (at commit 6da29e6) while diagnosing the
 * SIGSTOP-zombie test of many-workers.spec.ts: a partition loop blocked in
 * the consumer's fetch did not look at the lease when the fetch returned. If the renewal timer has meanwhile found the lease
 * gone (leaseLost, `this.lease` cleared), the loop still takes the job, runs
 * it, and its commit is refused ("no valid lease") - correct fencing. But the
 * LeaseLostError then reaches loseLease() a second time, which returns early
 * because `this.lease` is already undefined, so the job stays in the worker's
 * `holds`. When the worker takes the partition again, it tells the consumer it
 * still holds that job: the job, which sits in the active list, is never
 * fetched as a leftover. Its events are never applied (lost), later events of
 * the same keys are applied past it (order), and drain() never returns.
 *
 * The takeover is made deterministic by playing the other worker in Redis: the
 * epoch is incremented and the lease set to "<epoch>|thief" (what
 * lease-acquire-2.lua does for a new holder after expiry), with a TTL, so the
 * "thief" dies and the worker takes the partition back. The event that lands
 * in the window is sent from the worker's own leaseLost listener, i.e. after
 * the loss was noticed and while the loop is (almost always) still blocked in
 * its fetch (blocks of up to 1 s). Every partition is one trial.
 */
import { Redis } from 'ioredis';
import { account } from '../../apps/bank/account-machine';
import { partitionOf } from '../../mailbox';
import { PartitionKeys } from '../../persistence';
import { redisUrl, uniqueNamespace } from '../helpers/redis';
import { systems } from '../helpers/system';
import { sleep } from '../helpers/time';
import { drainReport } from './fixtures/drain';

const PARTITIONS = 4;
const LEASE_TTL_MS = 1_000;
const THIEF_TTL_MS = 2_500;

describe('faults: lease taken over while the partition loop waits for jobs', () => {
  const ns = uniqueNamespace('lease-fetch');
  const sys = systems(); // closed, and the namespace deleted, after the test
  let redis: Redis | undefined;

  afterAll(() => {
    redis?.disconnect();
  });

  it('applies the event that arrived while the lease was gone once the partition is taken back, in order', async () => {
    redis = new Redis(redisUrl());
    const worker = await sys.create([account], { namespace: ns, partitions: PARTITIONS, leaseTtlMs: LEASE_TTL_MS });
    const producer = await sys.create([account], { namespace: ns, partitions: PARTITIONS, worker: false });

    // One key per partition.
    const keyOf = new Map<number, string>();
    for (let i = 0; keyOf.size < PARTITIONS; i++) {
      const p = partitionOf('account', `acct-${i}`, PARTITIONS);
      if (!keyOf.has(p)) keyOf.set(p, `acct-${i}`);
    }
    const deadline = Date.now() + 10_000;
    while (worker.ownedPartitions().length < PARTITIONS) {
      if (Date.now() > deadline) throw new Error(`worker owns only ${worker.ownedPartitions().join(',')}`);
      await sleep(20);
    }
    for (const [p, key] of keyOf) await producer.send('account', key, { type: 'deposit', amount: 10 }, { id: `first-${p}` });
    await producer.drain({ timeoutMs: 10_000 });
    await sleep(1_200); // idle: every partition loop is blocked in its fetch

    // When the worker notices the loss, an event arrives for that partition.
    let stealing = true;
    const windowSends: Promise<unknown>[] = [];
    const lostAt = new Map<number, number>();
    worker.events.on('leaseLost', ({ partition }) => {
      if (!stealing || lostAt.has(partition)) return;
      lostAt.set(partition, Date.now());
      windowSends.push(producer.send('account', keyOf.get(partition)!, { type: 'deposit', amount: 5 }, { id: `window-${partition}` }));
    });
    const reacquired = new Set<number>();
    worker.events.on('leaseAcquired', ({ partition }) => {
      if (lostAt.has(partition)) reacquired.add(partition);
    });

    // "Another worker" takes every partition over (as after expiry), and dies THIEF_TTL_MS later.
    for (let p = 0; p < PARTITIONS; p++) {
      const keys = new PartitionKeys(ns, p);
      const epoch = await redis.incr(keys.epoch);
      await redis.set(keys.lease, `${epoch}|thief`, 'PX', THIEF_TTL_MS);
    }
    while (lostAt.size < PARTITIONS) {
      if (Date.now() > deadline + 5_000) throw new Error(`leaseLost only for ${[...lostAt.keys()].join(',')}`);
      await sleep(10);
    }
    stealing = false;
    await Promise.all(windowSends);

    // The thief's leases expire; the worker takes its partitions back. Then one more event per key.
    while (reacquired.size < PARTITIONS) {
      if (Date.now() > deadline + 15_000) throw new Error(`partitions taken back: ${[...reacquired].join(',')}`);
      await sleep(20);
    }
    for (const [p, key] of keyOf) await producer.send('account', key, { type: 'deposit', amount: 1 }, { id: `after-${p}` });

    // drain(), and the jobs left in BullMQ's active lists (a stuck job is what keeps drain() waiting).
    const { drained, active } = await drainReport(producer, redisUrl(), 8_000);

    const journals = new Map<number, string[]>();
    for (const [p, key] of keyOf) journals.set(p, (await producer.journal('account', key)).map((e) => e.id));
    const bad = [...journals].filter(([p, ids]) => ids.join() !== [`first-${p}`, `window-${p}`, `after-${p}`].join());
    process.stdout.write(
      `lease-lost-while-fetching: partitions=${PARTITIONS} drained=${drained} active-jobs-left=${active.join(',')} partitions-with-lost-or-misordered-events=${bad.length} ` +
        `${bad.map(([p, ids]) => `p${p}=[${ids.join(',')}]`).join(' ')}\n`,
    );

    expect(bad.map(([p, ids]) => ({ partition: p, journal: ids }))).toEqual([]);
    expect(drained).toBe(true);
  }, 60_000);
});
