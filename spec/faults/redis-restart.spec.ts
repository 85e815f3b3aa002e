/**
 * Redis itself killed with kill -9 and restarted (AOF replay) in the middle of
 * a stream of events. The worker is a separate process that is never
 * restarted: it must ride out the outage (reconnect, wait out LOADING, re-run
 * its scripts after the script cache was emptied, take its leases again) by
 * itself. The producer retries sends that failed with the same id.
 * Afterwards every accepted event is applied exactly once, in order, per key;
 * journals are contiguous; state == model == replay; outputs exactly once.
 *
 * Durability: the private Redis runs with `appendfsync always`, set with
 * CONFIG SET after every (re)start (the helper starts it with everysec). With
 * everysec, Redis may lose up to ~1 s of writes it acknowledged when it is
 * killed -9 (its documented contract, not keyflow's; the design doc measured 0
 * losses, but a test must not depend on luck). With `always` an acknowledged
 * write is on disk before its reply, so "send() resolved" means "durable" and
 * a lost event is keyflow's fault. The few ms between a restart and the CONFIG
 * SET run with everysec; the next kill comes seconds later, after those writes
 * have long been flushed.
 *
 * Sends usually do not reject here (rejected-sends=0): keyflow's client waits
 * for Redis (maxRetriesPerRequest: null) and ioredis re-sends commands whose
 * reply was lost, so a send in flight at the kill may be written twice; the
 * retry-with-the-same-id path is kept for the sends that do reject.
 */
import { Redis } from 'ioredis';
import { createActorSystem, type ActorSystem } from '../../index';
import { account } from '../../apps/bank/account-machine';
import { startPrivateRedis, uniqueNamespace, type PrivateRedisHandle } from '../helpers/redis';
import { sleep } from '../helpers/time';
import { expectExactlyOnce, printProblems, verdictFigures, verifyBank, verifyOutputs } from './fixtures/bank-model';
import { KeyLanes, waitApplied } from './fixtures/bank-stream';
import { drainOrError } from './fixtures/drain';
import { startBankWorker, Timeline, type WorkerProc } from './fixtures/worker-proc';

const KEYS = 50;
const PARTITIONS = 8;
const LEASE_TTL_MS = 1_000;
/** Each fault: how long Redis stays down before restart() (one shorter and one longer than the lease TTL). */
const OUTAGES_MS = [1_500, 200];

async function appendfsyncAlways(url: string): Promise<void> {
  const c = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: true });
  try {
    await c.connect();
    await c.config('SET', 'appendfsync', 'always');
    const [, value] = (await c.config('GET', 'appendfsync')) as [string, string];
    if (value !== 'always') throw new Error(`appendfsync is ${value}`);
  } finally {
    c.disconnect();
  }
}

describe('faults: Redis killed with kill -9 and restarted (AOF replay)', () => {
  let redis: PrivateRedisHandle | undefined;
  let worker: WorkerProc | undefined;
  const systems: ActorSystem[] = [];
  /** Worker output and the test's own steps, time-stamped: saved to a file when something fails. */
  const timeline = new Timeline();
  let passed = false;

  afterAll(async () => {
    if (!passed) timeline.save('redis-restart');
    if (worker?.alive) await worker.kill9();
    await Promise.all(systems.map((s) => s.close()));
    await redis?.stop();
  });

  it('loses and duplicates nothing, and the worker resumes by itself', async () => {
    const t0 = Date.now();
    const mark = (what: string) => timeline.add('test', what);
    redis = await startPrivateRedis({ appendonly: true });
    await appendfsyncAlways(redis.url);
    const ns = uniqueNamespace('rrestart');
    const producer = await createActorSystem({ redis: redis.url, namespace: ns, partitions: PARTITIONS, actors: [account], worker: false, closeTimeoutMs: 2_000 });
    systems.push(producer);
    const w = startBankWorker('worker', { redisUrl: redis.url, namespace: ns, partitions: PARTITIONS, leaseTtlMs: LEASE_TTL_MS }, timeline);
    worker = w;
    await w.ready(20_000);

    const keys = Array.from({ length: KEYS }, (_, i) => `acct-${i}`);
    const lanes = new KeyLanes(producer, { keys, seed: 20261121, idPrefix: 'ev', maxPerKey: 10_000, pauseMs: [40, 80] });
    lanes.start();

    // The probe key: one deposit sent right after each restart, through a fresh
    // producer connection (no reconnect backoff in the measurement), then polled.
    let probes = 0;
    const resumeMs: (number | undefined)[] = [];
    /** Per fault, how many lines the worker had printed when Redis answered again. */
    const logMarks: number[] = [];
    for (const outage of OUTAGES_MS) {
      await sleep(2_000);
      mark(`kill -9 Redis (sent so far: ${lanes.total})`);
      redis.kill9();
      await sleep(outage);
      await redis.restart(); // resolves once PING answers +PONG: the AOF is loaded
      const up = Date.now();
      mark('Redis answers PING again');
      await appendfsyncAlways(redis.url);
      logMarks.push(w.lines.length);
      const fresh = await createActorSystem({ redis: redis.url, namespace: ns, partitions: PARTITIONS, actors: [account], worker: false, closeTimeoutMs: 2_000 });
      systems.push(fresh);
      probes++;
      const probe = { key: 'probe', id: `probe-${probes}`, event: { type: 'deposit' as const, amount: 1 } };
      // Recorded in the model once send() resolves; a failed attempt is retried with the same id.
      await lanes.send(probe, fresh);
      mark(`probe ${probe.id} accepted`);
      resumeMs.push(await waitApplied(fresh, 'probe', probes, 10_000, up));
      mark(`probe ${probe.id} applied: ${resumeMs[resumeMs.length - 1] ?? 'never'}`);
    }
    await sleep(1_500);
    await lanes.stop(15_000);
    mark(`stream stopped: ${lanes.total} events accepted`);
    const drainError = await drainOrError(producer, 15_000);
    mark(`drained: ${drainError?.message ?? 'ok'}`);

    const verifier = await createActorSystem({ redis: redis.url, namespace: ns, partitions: PARTITIONS, actors: [account], worker: false, closeTimeoutMs: 2_000 });
    systems.push(verifier);
    const v = await verifyBank(verifier, lanes.accepted);
    const out = await verifyOutputs(verifier, v.expectedOutputs);
    const workerAlive = w.child.exitCode === null && w.child.signalCode === null;
    const readyLines = w.lines.filter((l) => l.text === 'ready').length;
    const leasesAfterFaults = logMarks.map((from, i) => w.lines.slice(from, logMarks[i + 1] ?? w.lines.length).filter((l) => l.text.startsWith('lease ')).length);
    const workerErrors = w.errors().length + w.stderr().length;
    const resumed = resumeMs.map((ms) => (ms === undefined ? 'never' : String(ms)));
    process.stdout.write(
      `redis-restart: events=${v.events} keys=${v.keys} faults=${OUTAGES_MS.length} (kill -9 of Redis, down ${OUTAGES_MS.join('/')} ms) ` +
        `rejected-sends=${lanes.rejectedSends} ${verdictFigures(v, out)} resume-ms=${resumed.join('/')} ` +
        `worker-same-process=${workerAlive} lease-acquisitions-after-faults=${leasesAfterFaults.join('/')} worker-error-lines=${workerErrors} ` +
        `total-ms=${Date.now() - t0}\n`,
    );
    printProblems('redis-restart', v, drainError);

    // Exactly once, in order, state == model == replay.
    expectExactlyOnce(v, out);
    // The same worker process went on by itself after each restart, and nothing was left behind.
    expect(resumeMs.every((ms) => ms !== undefined)).toBe(true);
    expect(drainError).toBeUndefined();
    expect(workerAlive).toBe(true);
    expect(readyLines).toBe(1);
    // The stream really ran across the faults.
    expect(v.events).toBeGreaterThan(KEYS * 20);
    expect(v.expectedOutputs.size).toBeGreaterThan(0);
    passed = true;
  }, 90_000);
});
