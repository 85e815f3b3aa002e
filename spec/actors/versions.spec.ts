/**
 * Machine versions on real Redis: a snapshot of an older machine is migrated
 * when rehydrated (the journal tail replayed with the current machine) and
 * rewritten as the current version; a snapshot with no migration path stops
 * its key (events held in dead letters until resume) without touching the
 * others; `system.verify(type)` replays journals and finds tampered snapshots,
 * on one Redis and on a Redis Cluster.
 */
import { Cluster, Redis } from 'ioredis';
import { assign, emit, setup } from 'xstate';
import {
  ActorStoppedError,
  CorruptRecordError,
  createActorSystem,
  defineActor,
  EventDeadLetteredError,
  InvalidKeyError,
  InvalidOptionError,
  UnknownActorTypeError,
  VersionMismatchError,
  type ActorSystem,
  type SupervisionEvent,
} from '../../index';
import { partitionOf } from '../../mailbox';
import { actorRef, PartitionKeys, type JsonObject } from '../../persistence';
import { offer } from '../faults/fixtures/timer-machine';
import { startPrivateCluster, type PrivateCluster } from '../helpers/cluster';
import { redisUrl, uniqueNamespace } from '../helpers/redis';
import { collectOutputs, systems } from '../helpers/system';

const sys = systems();

/** Version 1 of a wallet: state `open`, context `{ balance }` in whole units. */
const walletV1 = setup({ types: { context: {} as { balance: number }, events: {} as { type: 'add'; n: number } } }).createMachine({
  id: 'wallet',
  initial: 'open',
  context: { balance: 0 },
  states: { open: { on: { add: { actions: assign({ balance: ({ context, event }) => context.balance + event.n }) } } } },
});

/** Version 2: the state is renamed `active`, the context holds `cents`, each add emits an output. */
const walletV2 = setup({ types: { context: {} as { cents: number }, events: {} as { type: 'add'; n: number } } }).createMachine({
  id: 'wallet',
  initial: 'active',
  context: { cents: 0 },
  states: {
    active: {
      on: {
        add: {
          actions: [assign({ cents: ({ context, event }) => context.cents + event.n * 100 }), emit(({ event }) => ({ type: 'added', cents: event.n * 100 }))],
        },
      },
    },
  },
});

/** The v1 -> v2 migration of a persisted snapshot, counting its calls. */
const migrations: number[] = [];
function migrateWallet(persisted: JsonObject, fromVersion: number): JsonObject {
  migrations.push(fromVersion);
  const { balance } = persisted.context as { balance: number };
  return { ...persisted, value: 'active', context: { cents: balance * 100 } };
}

const v1 = (snapshotEvery: number) => defineActor({ type: 'wallet', machine: walletV1, snapshotEvery });
const v2 = (snapshotEvery: number, migrate?: (p: JsonObject, from: number) => JsonObject) =>
  defineActor({ type: 'wallet', machine: walletV2, snapshotEvery, version: 2, migrate });

/** The stored snapshot hash of a wallet key (fields seq, version, state). */
async function storedSnapshot(ns: string, key: string, partitions = 4): Promise<{ seq: number; version: number; state: JsonObject } | undefined> {
  const r = new Redis(redisUrl());
  try {
    const keys = new PartitionKeys(ns, partitionOf('wallet', key, partitions));
    const [seq, version, state] = await r.hmget(keys.snapshot(actorRef('wallet', key)), 'seq', 'version', 'state');
    return seq === null ? undefined : { seq: Number(seq), version: Number(version), state: JSON.parse(state!) as JsonObject };
  } finally {
    r.disconnect();
  }
}

async function sendAdds(system: ActorSystem, key: string, ns: number[]): Promise<void> {
  for (const n of ns) await system.send('wallet', key, { type: 'add', n });
}

async function stoppedErrorOf(system: ActorSystem, send: () => Promise<unknown>): Promise<VersionMismatchError> {
  const stopped: SupervisionEvent[] = [];
  system.events.on('stopped', (e) => stopped.push(e));
  await send();
  await system.drain();
  expect(stopped).toHaveLength(1);
  expect(stopped[0]!.error).toBeInstanceOf(VersionMismatchError);
  return stopped[0]!.error as VersionMismatchError;
}

describe('machine versions', () => {
  beforeEach(() => {
    migrations.length = 0;
  });

  it('migrates a v1 snapshot when rehydrated under v2, replays the journal tail with v2, and rewrites the snapshot as v2', async () => {
    const ns = uniqueNamespace();
    const old = await sys.create([v1(3)], { namespace: ns });
    // One event per commit (ask), so the snapshot is written at seq 3 and entries 4 and 5 form the tail.
    for (const n of [1, 2, 3, 4, 5]) await old.ask('wallet', 'w', { type: 'add', n });
    expect(await old.get('wallet', 'w')).toMatchObject({ value: 'open', context: { balance: 15 }, seq: 5, version: 1 });
    expect(await storedSnapshot(ns, 'w')).toMatchObject({ seq: 3, version: 1 });
    await old.close();

    const system = await sys.create([v2(100, migrateWallet)], { namespace: ns });
    // Snapshot (seq 3, balance 6) migrated to 600 cents, then entries 4 and 5 replayed by v2: +400, +500.
    expect(await system.get('wallet', 'w')).toEqual({ type: 'wallet', key: 'w', value: 'active', context: { cents: 1500 }, status: 'active', seq: 5, version: 2 });
    expect(migrations).toEqual([1]);
    expect(await storedSnapshot(ns, 'w')).toMatchObject({ seq: 3, version: 1 }); // get writes nothing
    // verify with the definition about to be deployed: the v1 snapshot is migrated, then compared with
    // v2's replay of the journal up to it; a migrate that disagrees with that replay is a mismatch.
    expect(await system.verify('wallet')).toMatchObject({ checked: 1, compared: 1, mismatched: [], errors: [], versions: { 1: 1 } });
    const wrongMigrate = await sys.create([v2(100, (p) => ({ ...p, value: 'active', context: { cents: 1 } }))], { namespace: ns, worker: false });
    const bad = await wrongMigrate.verify('wallet');
    expect(bad.mismatched.map((m) => [m.key, m.seq, m.version])).toEqual([['w', 3, 1]]);
    migrations.length = 0;

    const after = await system.ask('wallet', 'w', { type: 'add', n: 6 });
    expect(after).toMatchObject({ value: 'active', context: { cents: 2100 }, seq: 6, version: 2 });
    expect(migrations).toEqual([1]); // the live actor was rebuilt from the v1 snapshot
    const outputs = await collectOutputs(system, 1, 3_000);
    expect(outputs.map((o) => [o.key, o.seq, o.event])).toEqual([['w', 6, { type: 'added', cents: 600 }]]);
    // The first commit after a migration writes the snapshot as the current version, so migrate is not needed again.
    const snap = await storedSnapshot(ns, 'w');
    expect(snap).toMatchObject({ seq: 6, version: 2, state: { value: 'active', context: { cents: 2100 } } });
    migrations.length = 0;
    expect((await system.get('wallet', 'w'))?.context).toEqual({ cents: 2100 });
    expect(migrations).toEqual([]);
    // The journal still holds what v1 saw; replaying it from scratch with v2 agrees with the v2 snapshot.
    const report = await system.verify('wallet');
    expect(report).toMatchObject({ checked: 1, compared: 1, mismatched: [], errors: [], versions: { 2: 1 } });
  });

  it('stops a key whose snapshot has no migration path: its events are held, other keys go on; resume after deploying migrate', async () => {
    const ns = uniqueNamespace();
    const old = await sys.create([v1(1)], { namespace: ns });
    await sendAdds(old, 'a', [1, 2]);
    await sendAdds(old, 'b', [7]);
    await old.drain();
    await old.close();

    // v2 without migrate, default supervision ('dead-letter'): the key is stopped all the same, without restarts.
    const system = await sys.create([v2(1)], { namespace: ns });
    const restarts: string[] = [];
    system.events.on('restarted', (e) => restarts.push(e.key));
    const error = await stoppedErrorOf(system, async () => {
      await sendAdds(system, 'a', [3, 4]);
      await expect(system.ask('wallet', 'a', { type: 'add', n: 5 })).rejects.toThrow(EventDeadLetteredError);
    });
    expect(error).toMatchObject({ code: 'VERSION_MISMATCH', reason: 'no-migrate', actorType: 'wallet', key: 'a', storedVersion: 1, currentVersion: 2 });
    expect(error.message).toContain('system.resume(type, key)');
    expect(restarts).toEqual([]);
    // Another key (new under v2) is unaffected.
    expect((await system.ask('wallet', 'fresh', { type: 'add', n: 1 })).context).toEqual({ cents: 100 });
    // get throws the typed error instead of returning a state it cannot build; nothing of 'a' was written.
    await expect(system.get('wallet', 'a')).rejects.toThrow(VersionMismatchError);
    await expect(system.get('wallet', 'b')).rejects.toMatchObject({ reason: 'no-migrate', key: 'b' });
    expect((await system.journal('wallet', 'a')).map((e) => e.event.n)).toEqual([1, 2]);
    expect(await storedSnapshot(ns, 'a')).toMatchObject({ seq: 2, version: 1 });
    const held = await system.deadLetters().list();
    expect(held.map((d) => [d.key, d.event.n, d.error.name])).toEqual([
      ['a', 3, 'VersionMismatchError'],
      ['a', 4, ActorStoppedError.name],
      ['a', 5, ActorStoppedError.name],
    ]);
    // Later events are held too, on any worker.
    await sendAdds(system, 'a', [6]);
    await system.drain();
    expect((await system.deadLetters().list()).length).toBe(4);
    await system.close();

    // Deploy the fix: v2 with migrate. resume applies the held events once, in order.
    const fixed = await sys.create([v2(1, migrateWallet)], { namespace: ns });
    expect(await fixed.resume('wallet', 'a')).toEqual({ redelivered: 4 });
    await fixed.drain();
    expect(await fixed.get('wallet', 'a')).toMatchObject({ value: 'active', context: { cents: (1 + 2 + 3 + 4 + 5 + 6) * 100 }, seq: 6, version: 2 });
    expect((await fixed.journal('wallet', 'a')).map((e) => e.event.n)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await storedSnapshot(ns, 'a')).toMatchObject({ seq: 6, version: 2 });
    expect(await fixed.deadLetters().list()).toEqual([]);
    expect((await fixed.get('wallet', 'b'))?.context).toEqual({ cents: 700 });
  });

  it('stops a key on a snapshot newer than the code, and on a migrate that throws', async () => {
    const ns = uniqueNamespace();
    const a = await sys.create([v1(1)], { namespace: ns });
    await sendAdds(a, 'old', [1]);
    await a.drain();
    await a.close();
    const b = await sys.create([v2(1, migrateWallet)], { namespace: ns });
    await sendAdds(b, 'new', [1]);
    await b.drain();
    await b.close();

    // Rolled back to v1: the v2 snapshot is not read as v1 (migrate only goes forward).
    const rolledBack = await sys.create([v1(1)], { namespace: ns });
    const newer = await stoppedErrorOf(rolledBack, () => sendAdds(rolledBack, 'new', [2]));
    expect(newer).toMatchObject({ reason: 'newer', key: 'new', storedVersion: 2, currentVersion: 1 });
    expect((await rolledBack.ask('wallet', 'other', { type: 'add', n: 2 })).context).toEqual({ balance: 2 });
    await rolledBack.close();

    const broken = await sys.create(
      [
        v2(1, () => {
          throw new Error('cannot read balance');
        }),
      ],
      { namespace: ns },
    );
    const failed = await stoppedErrorOf(broken, () => sendAdds(broken, 'old', [2]));
    expect(failed).toMatchObject({ reason: 'migrate-failed', key: 'old', storedVersion: 1 });
    expect((failed.cause as Error).message).toBe('cannot read balance');
    // A migrate whose result the machine cannot restore (a state that does not exist) is a failed migration too.
    await broken.close();
    const wrong = await sys.create([v2(1, (p) => ({ ...p, value: 'nowhere' }))], { namespace: ns });
    await expect(wrong.get('wallet', 'old')).rejects.toMatchObject({ code: 'VERSION_MISMATCH', reason: 'migrate-failed' });
    expect((await wrong.get('wallet', 'new'))?.context).toEqual({ cents: 100 });
  });

  it('verify reports a clean namespace as clean and finds a tampered snapshot, a corrupt journal and an unmigratable snapshot', async () => {
    const ns = uniqueNamespace();
    const wallet = v1(2);
    const system = await sys.create([wallet, offer], { namespace: ns });
    const longKey = 'L'.repeat(300);
    const keys = ['ü ber:key/1 {x}', ...Array.from({ length: 20 }, (_, i) => `k${i}`), longKey];
    const count = (i: number) => 1 + (i % 4);
    for (const [i, key] of keys.entries()) await sendAdds(system, key, Array.from({ length: count(i) }, (_, n) => n + 1));
    for (const key of ['o1', 'o2', 'o3']) await system.send('offer', key, { type: 'start' });
    await system.send('offer', 'o2', { type: 'ping' });
    await system.drain();
    // A scan cannot recover the long key from its digest: it is skipped (and verified with opts.keys).
    const scanned = keys.filter((k) => k !== longKey);
    const snapshotted = scanned.filter((k) => count(keys.indexOf(k)) >= 2); // snapshotEvery: 2

    const progress: number[] = [];
    const clean = await system.verify('wallet', { concurrency: 3, pageSize: 1, onProgress: (n) => progress.push(n) });
    expect(clean.mismatched).toEqual([]);
    expect(clean.errors).toEqual([]);
    expect(clean.skipped).toEqual([{ key: expect.stringMatching(/^#/), reason: expect.stringContaining('opts.keys') }]);
    expect(clean.checked).toBe(scanned.length);
    expect(clean.compared).toBe(snapshotted.length);
    expect(clean.versions).toEqual({ 1: snapshotted.length });
    expect(progress.at(-1)).toBe(clean.checked);
    expect(await system.verify('wallet', { keys: [longKey, 'never-seen'] })).toMatchObject({
      checked: 1,
      compared: 1,
      mismatched: [],
      skipped: [{ key: 'never-seen', reason: expect.stringContaining('no journal') }],
    });
    // Pending durable timers are part of what is compared (o2's snapshot at seq 2 holds one).
    expect(await system.verify('offer')).toMatchObject({ checked: 3, compared: 1, mismatched: [], errors: [] });

    // Tamper with stored records behind the engine's back: k2 (4 events, a snapshot), k3 (1 event, no snapshot), k6 (4 events).
    const r = new Redis(redisUrl());
    const at = (key: string) => new PartitionKeys(ns, partitionOf('wallet', key, 4));
    const k2 = at('k2').snapshot(actorRef('wallet', 'k2'));
    const [k2seq, k2state] = await r.hmget(k2, 'seq', 'state');
    const tampered = JSON.parse(k2state!) as { context: { balance: number } };
    const balance = tampered.context.balance;
    tampered.context.balance += 1_000;
    await r.hset(k2, 'state', JSON.stringify(tampered));
    await r.lset(at('k3').journal(actorRef('wallet', 'k3')), 0, '{not json');
    await r.hset(at('k6').snapshot(actorRef('wallet', 'k6')), 'version', '9');
    r.disconnect();

    const dirty = await system.verify('wallet');
    expect(dirty.checked).toBe(clean.checked);
    expect(dirty.mismatched).toEqual([
      {
        key: 'k2',
        seq: Number(k2seq),
        version: 1,
        stored: { state: expect.objectContaining({ value: 'open', context: { balance: balance + 1_000 } }), timers: {} },
        replayed: { state: expect.objectContaining({ value: 'open', context: { balance } }), timers: {} },
        differences: ['state.context.balance'],
      },
    ]);
    const errors = Object.fromEntries(dirty.errors.map((e) => [e.key, e.error]));
    expect(Object.keys(errors).sort()).toEqual(['k3', 'k6']);
    expect(errors.k3).toBeInstanceOf(CorruptRecordError);
    expect(errors.k6).toMatchObject({ reason: 'newer', storedVersion: 9 });
    expect(dirty.totals).toEqual({ mismatched: 1, errors: 2, skipped: 1 });
    expect(dirty.versions).toEqual({ 1: snapshotted.length - 1, 9: 1 });
    expect((await system.verify('wallet', { maxReported: 0 })).errors).toEqual([]);

    await expect(system.verify('nope')).rejects.toThrow(UnknownActorTypeError);
    await expect(system.verify('wallet', { concurrency: 0 })).rejects.toThrow(InvalidOptionError);
    await expect(system.verify('wallet', { keys: [''] })).rejects.toThrow(InvalidKeyError);
  });
});

describe('machine versions: verify on a Redis Cluster', () => {
  let cluster: PrivateCluster | undefined;
  let system: ActorSystem | undefined;

  afterAll(async () => {
    await system?.close();
    await cluster?.stop();
  });

  it('scans every master and checks every key', async () => {
    cluster = await startPrivateCluster(3);
    system = await createActorSystem({ redis: { cluster: cluster.startup }, namespace: 'vc', partitions: 8, actors: [v1(2)], leaseTtlMs: 1_000 });
    const keys = Array.from({ length: 30 }, (_, i) => `c${i}`);
    for (const key of keys) await sendAdds(system, key, [1, 2, 3]);
    await system.drain();
    expect(await system.verify('wallet')).toMatchObject({ checked: 30, compared: 30, mismatched: [], errors: [], skipped: [] });
    const probe = new Cluster(cluster.startup);
    const k = new PartitionKeys('vc', partitionOf('wallet', 'c5', 8)).snapshot(actorRef('wallet', 'c5'));
    await probe.hset(k, 'state', JSON.stringify({ ...(JSON.parse((await probe.hget(k, 'state'))!) as JsonObject), context: { balance: -1 } }));
    probe.disconnect();
    const report = await system.verify('wallet');
    expect(report.mismatched.map((m) => [m.key, m.differences])).toEqual([['c5', ['state.context.balance']]]);
  });
});
