import { Redis } from 'ioredis';
import {
  CommitStore,
  DuplicateCommitError,
  ForeignJobsActiveError,
  JournalStore,
  LeaseLostError,
  LeaseStore,
  PartitionKeys,
  SeqConflictError,
  StoppedActorCommitError,
  type Lease,
  type QueueGuard,
  type StepCommit,
} from '../../persistence';
import { cleanupNamespace, redisUrl, uniqueNamespace } from '../helpers/redis';

const LIMITS = { dedupRetainMs: 60_000, dedupMaxEntries: 1_000, streamMaxLen: 1_000, replyTtlMs: 1_000 };

function step(ref: string, expectedSeq: number, ids: string[], extra: Partial<StepCommit> = {}): StepCommit {
  return {
    actors: [{ ref, expectedSeq, entries: ids.map((id, i) => ({ seq: expectedSeq + i + 1, id, ts: 1, event: { type: 'e', id } })) }],
    dedup: ids.map((id) => `${ref}|${id}`),
    outputs: ids.map((id) => JSON.stringify({ id })),
    mail: [],
    deadLetters: [],
    replies: [],
    keyStates: [],
    ...extra,
  };
}

describe('persistence: commit, leases and fencing', () => {
  let client: Redis;
  let ns: string;
  let keys: PartitionKeys;
  let leases: LeaseStore;
  let commits: CommitStore;
  let journals: JournalStore;

  beforeEach(() => {
    client = new Redis(redisUrl());
    ns = uniqueNamespace('commit');
    keys = new PartitionKeys(ns, 3);
    leases = new LeaseStore(client);
    commits = new CommitStore(client, LIMITS);
    journals = new JournalStore(client);
  });

  afterEach(async () => {
    client.disconnect();
    await cleanupNamespace(redisUrl(), ns);
  });

  async function snapshotOfKeys(): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const k of (await client.keys(`*${ns}*`)).sort()) {
      const t = await client.type(k);
      out[k] = t === 'list' ? await client.lrange(k, 0, -1) : t === 'zset' ? await client.zrange(k, '0', '-1') : t === 'stream' ? await client.xlen(k) : t === 'hash' ? await client.hgetall(k) : await client.get(k);
    }
    return out;
  }

  /**
   * Two lists and a sorted set in the partition's slot, standing for the mailbox queue's
   * active and waiting jobs and its wake-up markers; `guard` names them for a commit.
   */
  function fakeQueue() {
    const active = `${keys.prefix}test-active`;
    const waiting = `${keys.prefix}test-wait`;
    const marker = `${keys.prefix}test-marker`;
    const guard = (held: number, more: Partial<QueueGuard> = {}): QueueGuard => ({ activeKey: active, waitingKey: waiting, held, ...more });
    return { active, waiting, marker, guard };
  }

  it('gives each new holder a higher epoch, and keeps the lease for its holder', async () => {
    const a = await leases.acquire(keys, 'worker-a', 500);
    expect(a.acquired).toBe(true);
    const again = await leases.acquire(keys, 'worker-a', 500);
    expect(again).toEqual(a);
    const b = await leases.acquire(keys, 'worker-b', 500);
    expect(b.acquired).toBe(false);
    await leases.release(keys, (a as { lease: Lease }).lease);
    const b2 = await leases.acquire(keys, 'worker-b', 500);
    expect(b2.acquired && b2.lease.epoch).toBe((a as { lease: Lease }).lease.epoch + 1);
  });

  it('commits journal entries, de-dup records and outbox entries atomically', async () => {
    const got = await leases.acquire(keys, 'w', 5_000);
    if (!got.acquired) throw new Error('no lease');
    await commits.commit(keys, got.lease, step('t:k', 0, ['e1', 'e2']));
    const loaded = await journals.load(keys, 't:k');
    expect(loaded.seq).toBe(2);
    expect(loaded.tail.map((e) => e.id)).toEqual(['e1', 'e2']);
    expect(await commits.applied(keys, ['t:k|e1', 't:k|e3'])).toEqual([true, false]);
    expect(await client.xlen(keys.outbox)).toBe(1); // both outputs, in one record
  });

  it('carries every item of the packed argument byte for byte: multi-byte text, empty strings, long items', async () => {
    const got = await leases.acquire(keys, 'w', 5_000);
    if (!got.acquired) throw new Error('no lease');
    const ref = 't:ключ-€';
    const ids = ['é1', '😀', 'x'.repeat(70_000)];
    const bodies = ['{"v":"€ and 😀"}', '{}', '{"v":"\\u0000 \\n"}'];
    await commits.commit(keys, got.lease, step(ref, 0, ids, { outputs: bodies, replies: [{ askId: 'ä', body: '' }] }));
    expect((await journals.load(keys, ref)).tail.map((e) => e.id)).toEqual(ids);
    expect(await commits.applied(keys, ids.map((id) => `${ref}|${id}`))).toEqual([true, true, true]);
    // The commit's outputs: one record, their JSON array text.
    const stream = await client.xrange(keys.outbox, '-', '+');
    expect(stream.map(([, fields]) => fields)).toEqual([['outs', `[${bodies.join(',')}]`]]);
    expect(await client.lrange(keys.reply('ä'), 0, -1)).toEqual(['']);
  });

  it('refuses a commit from a worker whose lease expired or was taken over, writing nothing', async () => {
    const old = await leases.acquire(keys, 'zombie', 200);
    if (!old.acquired) throw new Error('no lease');
    await commits.commit(keys, old.lease, step('t:k', 0, ['e1']));
    await new Promise((r) => setTimeout(r, 300)); // the zombie's lease expires
    const before = await snapshotOfKeys();
    await expect(commits.commit(keys, old.lease, step('t:k', 1, ['e2']))).rejects.toBeInstanceOf(LeaseLostError);
    const next = await leases.acquire(keys, 'new-owner', 5_000);
    if (!next.acquired) throw new Error('no lease');
    expect(next.lease.epoch).toBeGreaterThan(old.lease.epoch);
    const afterTakeover = await snapshotOfKeys();
    await expect(commits.commit(keys, old.lease, step('t:k', 1, ['e2']))).rejects.toBeInstanceOf(LeaseLostError);
    expect(await leases.renew(keys, old.lease, 5_000)).toBe(false);
    expect(await snapshotOfKeys()).toEqual(afterTakeover);
    expect(Object.keys(afterTakeover).filter((k) => !k.endsWith(':lease') && !k.endsWith(':epoch'))).toEqual(
      Object.keys(before).filter((k) => !k.endsWith(':lease') && !k.endsWith(':epoch')),
    );
    await commits.commit(keys, next.lease, step('t:k', 1, ['e2']));
    expect((await journals.range(keys, 't:k')).map((e) => e.seq)).toEqual([1, 2]);
  });

  it('refuses a commit at the wrong seq or with an applied id, writing nothing (no partial write)', async () => {
    const got = await leases.acquire(keys, 'w', 5_000);
    if (!got.acquired) throw new Error('no lease');
    await commits.commit(keys, got.lease, step('t:a', 0, ['e1']));
    const before = await snapshotOfKeys();
    // Two actors: the first is fine, the second is stale. Nothing of either may be written.
    const twoActors: StepCommit = {
      ...step('t:b', 0, ['x1']),
      actors: [...step('t:b', 0, ['x1']).actors, ...step('t:a', 0, ['e9']).actors],
      dedup: ['t:b|x1', 't:a|e9'],
    };
    await expect(commits.commit(keys, got.lease, twoActors)).rejects.toBeInstanceOf(SeqConflictError);
    expect(await snapshotOfKeys()).toEqual(before);
    await expect(commits.commit(keys, got.lease, step('t:a', 1, ['e1']))).rejects.toBeInstanceOf(DuplicateCommitError);
    expect(await snapshotOfKeys()).toEqual(before);
  });

  it('refuses an unchecked commit that touches a stopped actor, writing nothing; a checked one is not refused for it', async () => {
    const got = await leases.acquire(keys, 'w', 5_000);
    if (!got.acquired) throw new Error('no lease');
    await commits.commit(keys, got.lease, { ...step('t:s', 0, ['e1']), keyStates: [{ op: 'stop', ref: 't:s', body: '{}' }] });
    const before = await snapshotOfKeys();
    await expect(commits.commit(keys, got.lease, { ...step('t:s', 1, ['e2']), unchecked: true })).rejects.toBeInstanceOf(StoppedActorCommitError);
    expect(await snapshotOfKeys()).toEqual(before);
    // An actor that is not stopped commits unchecked as usual.
    await commits.commit(keys, got.lease, { ...step('t:other', 0, ['o1']), unchecked: true });
    expect(await journals.length(keys, 't:other')).toBe(1);
    // Checked (the caller read the stopped set itself): the script does not look.
    await commits.commit(keys, got.lease, step('t:s', 1, ['e2']));
    expect(await journals.length(keys, 't:s')).toBe(2);
  });

  it('refuses a guarded commit while the queue holds jobs the committer does not, writing nothing; returns the waiting count', async () => {
    const got = await leases.acquire(keys, 'w', 5_000);
    if (!got.acquired) throw new Error('no lease');
    const q = fakeQueue();
    await client.rpush(q.active, 'j1', 'j2');
    await client.rpush(q.waiting, 'j3', 'j4', 'j5');
    const before = await snapshotOfKeys();
    await expect(commits.commit(keys, got.lease, { ...step('t:g', 0, ['e1']), queue: q.guard(1) })).rejects.toEqual(
      expect.objectContaining({ name: ForeignJobsActiveError.name, active: 2, held: 1 }),
    );
    expect(await snapshotOfKeys()).toEqual(before);
    // Holding both: committed, with the waiting count.
    const ok = await commits.commit(keys, got.lease, { ...step('t:g', 0, ['e1']), queue: q.guard(2) });
    expect(ok.waiting).toBe(3);
    expect(await journals.length(keys, 't:g')).toBe(1);
    // Without a guard the lists are not looked at.
    expect((await commits.commit(keys, got.lease, step('t:g', 1, ['e2']))).waiting).toBe(-1);
    expect(await journals.length(keys, 't:g')).toBe(2);
  });

  it('acknowledges jobs in the same atomic step: their ids leave the active list and their records go; a refused commit leaves them', async () => {
    const got = await leases.acquire(keys, 'w', 5_000);
    if (!got.acquired) throw new Error('no lease');
    const q = fakeQueue();
    const job = (id: string) => `${keys.prefix}test-job:${id}`;
    await client.rpush(q.active, 'j1', 'j2', 'j3');
    for (const id of ['j1', 'j2', 'j3']) await client.hset(job(id), 'data', id);
    await client.set(`${job('j1')}:lock`, 'token');
    // More keys than one DEL takes at once in the script (500).
    const extra = Array.from({ length: 600 }, (_, n) => job(`x${n}`));
    for (let n = 0; n < extra.length; n += 200) await client.mset(...extra.slice(n, n + 200).flatMap((k) => [k, '1']));
    const ack = { ids: ['j1', 'j2'], deleteKeys: [job('j1'), `${job('j1')}:lock`, job('j2'), `${job('j2')}:lock`, ...extra] };
    // Refused (a seq conflict): nothing acknowledged.
    const before = await snapshotOfKeys();
    await expect(commits.commit(keys, got.lease, { ...step('t:q', 5, ['e1']), queue: q.guard(3, { acknowledge: ack }) })).rejects.toBeInstanceOf(SeqConflictError);
    expect(await snapshotOfKeys()).toEqual(before);
    // Refused (fenced: not the lease holder's value): nothing acknowledged either.
    const stale: Lease = { ...got.lease, value: `${got.lease.epoch - 1}|w` };
    await expect(commits.commit(keys, stale, { ...step('t:q', 0, ['e1']), queue: q.guard(3, { acknowledge: ack }) })).rejects.toBeInstanceOf(LeaseLostError);
    expect(await snapshotOfKeys()).toEqual(before);
    // Committed: j1 and j2 are gone, j3 (not named) stays.
    await commits.commit(keys, got.lease, { ...step('t:q', 0, ['e1']), queue: q.guard(3, { acknowledge: ack }) });
    expect(await client.lrange(q.active, 0, -1)).toEqual(['j3']);
    expect(await client.exists(job('j1'), `${job('j1')}:lock`, job('j2'), ...extra)).toBe(0);
    expect(await client.hget(job('j3'), 'data')).toBe('j3');
    expect(await journals.length(keys, 't:q')).toBe(1);
  });

  it("removes the queue's wake-up marker only when nothing is waiting after the commit, and no other member", async () => {
    const got = await leases.acquire(keys, 'w', 5_000);
    if (!got.acquired) throw new Error('no lease');
    const q = fakeQueue();
    const guard = (held: number) => q.guard(held, { wakeMarker: { key: q.marker, member: '0' } });
    await client.zadd(q.marker, 0, '0', 1_700_000_000_000, '1');
    await client.rpush(q.active, 'j1');
    await client.rpush(q.waiting, 'j2');
    // A job waits: the marker stays (the blocking fetch must wake for it).
    expect((await commits.commit(keys, got.lease, { ...step('t:m', 0, ['e1']), queue: guard(1) })).waiting).toBe(1);
    expect(await client.zrange(q.marker, '0', '-1')).toEqual(['0', '1']);
    // Nothing waits: the base marker goes, the other member (a delayed job's) stays.
    await client.del(q.waiting);
    expect((await commits.commit(keys, got.lease, { ...step('t:m', 1, ['e2']), queue: guard(1) })).waiting).toBe(0);
    expect(await client.zrange(q.marker, '0', '-1')).toEqual(['1']);
    // A refused commit does not touch it either.
    await client.zadd(q.marker, 0, '0');
    await expect(commits.commit(keys, got.lease, { ...step('t:m', 2, ['e3']), queue: guard(0) })).rejects.toBeInstanceOf(ForeignJobsActiveError);
    expect(await client.zrange(q.marker, '0', '-1')).toEqual(['0', '1']);
  });

  it('writes a snapshot with its seq and version, and rehydration reads only the journal after it', async () => {
    const got = await leases.acquire(keys, 'w', 5_000);
    if (!got.acquired) throw new Error('no lease');
    await commits.commit(keys, got.lease, step('t:s', 0, ['e1', 'e2', 'e3']));
    const withSnap = step('t:s', 3, ['e4']);
    withSnap.actors[0]!.snapshot = { seq: 4, version: 2, state: { value: 'x', context: { n: 4 } }, timers: { t1: { token: 3 } } };
    await commits.commit(keys, got.lease, withSnap);
    await commits.commit(keys, got.lease, step('t:s', 4, ['e5']));
    const loaded = await journals.load(keys, 't:s');
    expect(loaded.snapshot).toEqual({ seq: 4, version: 2, state: { value: 'x', context: { n: 4 } }, timers: { t1: { token: 3 } } });
    expect(loaded.tail.map((e) => e.seq)).toEqual([5]);
    const timeTravel = await journals.load(keys, 't:s', { upToSeq: 2, fromScratch: true });
    expect(timeTravel.snapshot).toBeUndefined();
    expect(timeTravel.tail.map((e) => e.seq)).toEqual([1, 2]);
  });

  it('finds an applied id past the first 500 de-dup members (checked in chunks), writing nothing', async () => {
    const got = await leases.acquire(keys, 'w', 5_000);
    if (!got.acquired) throw new Error('no lease');
    await commits.commit(keys, got.lease, step('t:c', 0, ['e700']));
    const before = await snapshotOfKeys();
    const ids = Array.from({ length: 1_200 }, (_, i) => `n${i}`);
    ids[650] = 'e700';
    const err = await commits.commit(keys, got.lease, step('t:c', 1, ids)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DuplicateCommitError);
    expect((err as Error).message).toContain('t:c|e700');
    expect(await snapshotOfKeys()).toEqual(before);
  });

  it('bounds the de-dup records by count', async () => {
    const small = new CommitStore(client, { ...LIMITS, dedupMaxEntries: 1_000 });
    const got = await leases.acquire(keys, 'w', 5_000);
    if (!got.acquired) throw new Error('no lease');
    const ids = Array.from({ length: 1_500 }, (_, i) => `e${i}`);
    await small.commit(keys, got.lease, step('t:d', 0, ids.slice(0, 800)));
    await small.commit(keys, got.lease, step('t:d', 800, ids.slice(800)));
    expect(await client.zcard(keys.dedup)).toBe(1_000);
    expect(await small.applied(keys, ['t:d|e1499', 't:d|e0'])).toEqual([true, false]);
  });
});
