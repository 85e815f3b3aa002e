/**
 * A flaky network between the worker and Redis: a TCP proxy written here
 * (fixtures/chaos-proxy.ts) at random moments (seeded) either cuts every
 * connection of the worker or stalls them for 1-3 s (bytes held, delivered
 * on resume). Every stall is longer than the lease TTL (1 s), so the lease
 * expires in Redis meanwhile and what the worker sends from before the stall
 * (renewals, commits) arrives too late: it must be refused (fencing) and the
 * worker must take the partition again and go on by itself. The producer and
 * the verifier connect to Redis directly.
 * Afterwards: every accepted event applied exactly once, in send order per
 * key; journals contiguous; state == model == replay; outputs exactly once.
 */
import { account } from '../../apps/bank/account-machine';
import { rng } from '../helpers/random';
import { redisUrl, uniqueNamespace } from '../helpers/redis';
import { systems } from '../helpers/system';
import { sleep } from '../helpers/time';
import { expectExactlyOnce, printProblems, verdictFigures, verifyBank, verifyOutputs } from './fixtures/bank-model';
import { KeyLanes, waitApplied } from './fixtures/bank-stream';
import { ChaosProxy } from './fixtures/chaos-proxy';
import { drainOrError } from './fixtures/drain';

const KEYS = 50;
const PARTITIONS = 8;
const LEASE_TTL_MS = 1_000;
const FAULTS = 8;
const SEED = 20261122;

type Fault = { kind: 'cut' } | { kind: 'stall'; ms: number };

/** 8 faults in a seeded order: at least 3 cuts and 3 stalls, two of the stalls at least 2 s. */
function schedule(random: () => number): Fault[] {
  const faults: Fault[] = [];
  let longStalls = 0;
  for (let i = 0; i < FAULTS; i++) {
    const kind = i < 3 ? 'cut' : i < 6 ? 'stall' : random() < 0.5 ? 'cut' : 'stall';
    if (kind === 'cut') faults.push({ kind });
    else {
      const ms = longStalls < 2 ? 2_000 + Math.floor(random() * 1_000) : 1_000 + Math.floor(random() * 2_000);
      if (ms >= 2_000) longStalls++;
      faults.push({ kind, ms });
    }
  }
  // Fisher-Yates with the same generator.
  for (let i = faults.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [faults[i], faults[j]] = [faults[j]!, faults[i]!];
  }
  return faults;
}

describe('faults: connections of the worker cut and stalled by a TCP proxy', () => {
  const ns = uniqueNamespace('proxy');
  const sys = systems(); // closed, and the namespace deleted, after the test
  let proxy: ChaosProxy | undefined;

  afterAll(async () => {
    await proxy?.close();
  });

  it('applies every accepted event exactly once and in order across cuts and stalls', async () => {
    const t0 = Date.now();
    const random = rng(SEED);
    proxy = new ChaosProxy(ChaosProxy.targetOf(redisUrl()));
    const proxyUrl = await proxy.listen();

    const producer = await sys.create([account], { namespace: ns, partitions: PARTITIONS, worker: false, closeTimeoutMs: 3_000 });
    const worker = await sys.create([account], { redis: proxyUrl, namespace: ns, partitions: PARTITIONS, leaseTtlMs: LEASE_TTL_MS, closeTimeoutMs: 3_000 });
    const lost: string[] = [];
    let acquired = 0;
    let errors = 0;
    worker.events.on('leaseAcquired', () => acquired++);
    worker.events.on('leaseLost', ({ reason }) => lost.push(reason));
    worker.events.on('error', () => errors++);
    const deadline = Date.now() + 10_000;
    while (worker.ownedPartitions().length < PARTITIONS && Date.now() < deadline) await sleep(20);
    expect(worker.ownedPartitions()).toHaveLength(PARTITIONS);

    const keys = Array.from({ length: KEYS }, (_, i) => `acct-${i}`);
    const lanes = new KeyLanes(producer, { keys, seed: SEED, idPrefix: 'ev', maxPerKey: 10_000, pauseMs: [40, 80] });
    lanes.start();

    const faults = schedule(random);
    const resumeMs: (number | undefined)[] = [];
    let cutConnections = 0;
    let probes = 0;
    for (const fault of faults) {
      await sleep(300 + Math.floor(random() * 1_200));
      if (fault.kind === 'cut') {
        cutConnections += proxy.cut();
      } else {
        proxy.stall();
        await sleep(fault.ms);
        proxy.resume();
      }
      // Time to resume: from the end of the fault until an event sent then is applied.
      const end = Date.now();
      probes++;
      await lanes.send({ key: 'probe', id: `probe-${probes}`, event: { type: 'deposit', amount: 1 } });
      const ms = await waitApplied(producer, 'probe', probes, 10_000, end);
      resumeMs.push(ms);
      if (ms === undefined) break; // the worker did not recover: no point in more faults
    }
    await sleep(1_000);
    await lanes.stop(15_000);
    const drainError = await drainOrError(producer, 15_000);

    const v = await verifyBank(producer, lanes.accepted);
    const out = await verifyOutputs(producer, v.expectedOutputs);
    const fencedByRedis = lost.filter((r) => /Redis has "/.test(r) && !r.includes('(no valid lease)')).length;
    const renewRefused = lost.filter((r) => r === 'taken over or expired').length;
    const injected = resumeMs.length;
    const cuts = faults.slice(0, injected).filter((f) => f.kind === 'cut').length;
    const stalls = faults.slice(0, injected).filter((f): f is Extract<Fault, { kind: 'stall' }> => f.kind === 'stall');
    const recovered = resumeMs.filter((ms): ms is number => ms !== undefined);
    process.stdout.write(
      `proxy-cuts: events=${v.events} keys=${v.keys} faults=${injected} (cuts=${cuts} of ${cutConnections} connections, stalls=${stalls.length} of ${stalls.map((s) => s.ms).join('/')} ms, lease TTL ${LEASE_TTL_MS} ms) ` +
        `${verdictFigures(v, out)} ` +
        `resume-ms=${resumeMs.map((ms) => ms ?? 'never').join('/')} (max ${recovered.length ? Math.max(...recovered) : '-'}) ` +
        `leases-lost=${lost.length} (renewal refused ${renewRefused}, commit refused ${fencedByRedis}) commits-fenced-on-the-wire=${proxy.fencedCommitReplies} lease-acquisitions=${acquired} worker-errors=${errors} ` +
        `total-ms=${Date.now() - t0}\n`,
    );
    printProblems('proxy-cuts', v, drainError);

    // Exactly once, in order, state == model == replay.
    expectExactlyOnce(v, out);
    // The worker recovered from every fault by itself, and nothing was left behind.
    expect(resumeMs).toHaveLength(FAULTS);
    expect(resumeMs.every((ms) => ms !== undefined)).toBe(true);
    expect(drainError).toBeUndefined();
    // The faults were real: connections were cut, and the stalls outlived the lease.
    expect(cutConnections).toBeGreaterThan(0);
    expect(lost.length).toBeGreaterThan(0);
    expect(v.events).toBeGreaterThan(KEYS * 20);
    expect(v.expectedOutputs.size).toBeGreaterThan(0);
  }, 90_000);
});
