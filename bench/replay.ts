/**
 * Recovery benchmark: how fast an actor is rebuilt from its journal.
 *
 *   1. one key with a 100 000-entry journal tail and no snapshot:
 *      load (one script call) + decode + replay through the machine;
 *   2. a partition of 10 000 cold keys (30 events each, a snapshot every 20):
 *      a fresh worker applies one new event to every key, so each key is
 *      rehydrated (snapshot + 10-entry tail) on the way.
 *
 *   npm run bench:replay [-- --tail N --keys N --json]
 */
import { Redis } from 'ioredis';
import { createActorSystem, defineActor } from '../index';
import { accountMachine } from '../apps/bank/account-machine';
import { MachineRunner } from '../actors/machine-runner';
import { machineEvent } from '../actors/validation';
import { CommitStore, JournalStore, LeaseStore, PartitionKeys, actorRef, deleteNamespace, type ActorCommit, type JournalEntry } from '../persistence';
import { fullGc } from './gc';

export interface ReplayFigures {
  tailEvents: number;
  tailLoadMs: number;
  tailReplayMs: number;
  rehydrateEventsPerSec: number;
  coldKeys: number;
  coldKeyEvents: number;
  coldRecoveryMs: number;
  coldKeysPerSec: number;
  /** Heap growth per live actor once the cold keys are all in memory (bank account actors, after a full GC). */
  bytesPerLiveActor: number;
}

/** Heap in use after a full garbage collection. */
function heapAfterGc(): number {
  fullGc();
  fullGc();
  return process.memoryUsage().heapUsed;
}

const LIMITS = { dedupRetainMs: 3_600_000, dedupMaxEntries: 2_000_000, streamMaxLen: 1_000, replyTtlMs: 1_000 };

function deposits(key: string, n: number, from = 1): JournalEntry[] {
  return Array.from({ length: n }, (_, i) => {
    const seq = from + i;
    const env = { id: `${key}-${seq}`, ts: 1_700_000_000_000 + seq, type: 'account', key, event: { type: 'deposit', amount: 1 } };
    return { seq, id: env.id, ts: env.ts, event: machineEvent(env) };
  });
}

export async function runReplayBench(redisUrl: string, opts: { tail?: number; keys?: number; log?: (s: string) => void } = {}): Promise<ReplayFigures> {
  const tailEvents = opts.tail ?? 100_000;
  const coldKeys = opts.keys ?? 10_000;
  const log = opts.log ?? (() => {});
  const ns = `bench-replay-${process.pid}-${Date.now() % 100000}`;
  const client = new Redis(redisUrl);
  const account = defineActor({ type: 'account', machine: accountMachine, snapshotEvery: 20 });
  const runner = new MachineRunner(account);
  const keys = new PartitionKeys(ns, 0);
  try {
    const lease = await new LeaseStore(client).acquire(keys, 'bench-setup', 600_000);
    if (!lease.acquired) throw new Error('no lease');
    const commits = new CommitStore(client, LIMITS);

    // 1. One key, a long tail, no snapshot.
    log(`writing a ${tailEvents}-entry journal...`);
    const hot = actorRef('account', 'hot');
    for (let from = 1; from <= tailEvents; from += 5_000) {
      const entries = deposits('hot', Math.min(5_000, tailEvents - from + 1), from);
      await commits.commit(keys, lease.lease, { actors: [{ ref: hot, expectedSeq: from - 1, entries }], dedup: [], outputs: [], mail: [], deadLetters: [], replies: [], keyStates: [] });
    }
    const journals = new JournalStore(client);
    let best = { load: Infinity, replay: Infinity };
    for (let run = 0; run < 3; run++) {
      const t0 = performance.now();
      const loaded = await journals.load(keys, hot);
      const t1 = performance.now();
      const { snapshot } = runner.rehydrate('hot', loaded);
      const t2 = performance.now();
      if ((snapshot.context as { balance: number }).balance !== tailEvents) throw new Error('replay gave a wrong balance');
      if (t2 - t0 < best.load + best.replay) best = { load: t1 - t0, replay: t2 - t1 };
    }

    // 2. A partition of cold keys, each with a snapshot at 20 and a 10-entry tail.
    log(`writing ${coldKeys} keys x 30 events...`);
    for (let k = 0; k < coldKeys; k += 200) {
      const actors: ActorCommit[] = [];
      for (let j = k; j < Math.min(coldKeys, k + 200); j++) {
        const key = `cold-${j}`;
        const entries = deposits(key, 30);
        const init = runner.initial(key);
        let s = runner.replayOne({ snapshot: init.snapshot, timers: {} }, entries[0]!, init.actions);
        for (const e of entries.slice(1, 20)) s = runner.replayOne(s, e);
        actors.push({ ref: actorRef('account', key), expectedSeq: 0, entries, snapshot: { seq: 20, version: 1, state: runner.persist(s.snapshot) } });
      }
      await commits.commit(keys, lease.lease, { actors, dedup: [], outputs: [], mail: [], deadLetters: [], replies: [], keyStates: [] });
    }
    await new LeaseStore(client).release(keys, lease.lease);

    log('recovering the cold partition with a fresh worker...');
    const system = await createActorSystem({ redis: redisUrl, namespace: ns, partitions: 1, actors: [account], maxLiveActors: coldKeys * 2 });
    await system.send('account', 'warm-up', { type: 'deposit', amount: 1 });
    await system.drain({ timeoutMs: 60_000 });
    const heapBefore = heapAfterGc();
    const t0 = performance.now();
    const sent: Promise<unknown>[] = [];
    for (let j = 0; j < coldKeys; j++) sent.push(system.send('account', `cold-${j}`, { type: 'deposit', amount: 1 }));
    await Promise.all(sent);
    await system.drain({ timeoutMs: 600_000 });
    const coldRecoveryMs = performance.now() - t0;
    const bytesPerLiveActor = Math.round((heapAfterGc() - heapBefore) / coldKeys);
    const probe = await system.get('account', `cold-${coldKeys - 1}`);
    if (probe?.seq !== 31 || probe.context.balance !== 31) throw new Error(`cold key recovered wrong: ${JSON.stringify(probe)}`);
    await system.close();

    return {
      tailEvents,
      tailLoadMs: Math.round(best.load),
      tailReplayMs: Math.round(best.replay),
      rehydrateEventsPerSec: Math.round(tailEvents / ((best.load + best.replay) / 1000)),
      coldKeys,
      coldKeyEvents: 30,
      coldRecoveryMs: Math.round(coldRecoveryMs),
      coldKeysPerSec: Math.round(coldKeys / (coldRecoveryMs / 1000)),
      bytesPerLiveActor,
    };
  } finally {
    await deleteNamespace(client, ns);
    client.disconnect();
  }
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const flag = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : undefined;
  };
  const json = argv.includes('--json');
  runReplayBench(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { tail: flag('--tail'), keys: flag('--keys'), log: (s) => process.stderr.write(`${s}\n`) })
    .then((f) => {
      if (json) process.stdout.write(`${JSON.stringify(f)}\n`);
      else {
        process.stdout.write(
          [
            `rehydrate one key, ${f.tailEvents}-entry tail: load ${f.tailLoadMs} ms + replay ${f.tailReplayMs} ms = ${f.rehydrateEventsPerSec} events/s`,
            `recover a partition of ${f.coldKeys} cold keys (snapshot + 10-entry tail each) and apply one event to each: ${f.coldRecoveryMs} ms = ${f.coldKeysPerSec} keys/s`,
            `memory: ${f.bytesPerLiveActor} bytes of heap per live actor (the ${f.coldKeys} bank accounts in memory, after a full GC)`,
          ].join('\n') + '\n',
        );
      }
      process.exit(0);
    })
    .catch((err: unknown) => {
      process.stderr.write(`${(err as Error).stack}\n`);
      process.exit(1);
    });
}
