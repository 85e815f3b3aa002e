import { DuplicateCommitError, ForeignJobsActiveError, LeaseLostError, SeqConflictError, StoppedActorCommitError } from './errors';
import { encodeEntry, type JournalEntry, type StoredSnapshot } from './journal';
import type { PartitionKeys } from './keys';
import type { Lease } from './lease';
import { packItems } from './pack';
import { registerScripts, type RedisClient } from './scripts';

/** What one actor's part of a step commits. */
export interface ActorCommit {
  ref: string;
  /** The journal length the step started from. */
  expectedSeq: number;
  /** Expire the actor's journal and snapshot after this much inactivity (ms); 0 or absent: keep. */
  ttlMs?: number;
  entries: JournalEntry[];
  /**
   * Per entry (same order), the event's JSON text as sent, when the caller has
   * it: stored as is (the event object may since have been completed with the
   * entry's id and ts, which the journal leaves out).
   */
  sentJson?: (string | undefined)[];
  snapshot?: StoredSnapshot;
}

export type OutboxKind = 'out' | 'mail' | 'timer';

/** An entry of the mail stream: mail to an actor, or a durable timer armed (relayed to the queues). */
export interface OutboxEntry {
  kind: Exclude<OutboxKind, 'out'>;
  body: string;
}

/**
 * The partition's queue, as a commit sees it: two lists in the partition's
 * hash slot, named by the mailbox (persistence knows nothing of its layout).
 */
export interface QueueGuard {
  /** The list of jobs in progress: the commit is refused if it holds more than `held` (ForeignJobsActiveError). */
  activeKey: string;
  /** Jobs the committer holds in `activeKey` (taken and not yet acknowledged). */
  held: number;
  /** The list of waiting jobs: its length comes back with the commit. */
  waitingKey: string;
  /**
   * A sorted-set member by which the queue wakes a blocked consumer ("a job is
   * waiting"), removed when `waitingKey` is empty after the commit: the queue
   * also adds it whenever it hands out a job (for other consumers, and the
   * owner of a partition is its only one), so it would wake the owner's next
   * blocking fetch for nothing.
   */
  wakeMarker?: { key: string; member: string };
  /**
   * Jobs this commit acknowledges (all their events are settled by it): their
   * ids are removed from `activeKey` and `deleteKeys` (their records) deleted,
   * in the same atomic step. Without it, the committer acknowledges them
   * itself after the commit (and a crash in between leaves them to be applied
   * again, harmlessly: de-dup).
   */
  acknowledge?: { ids: string[]; deleteKeys: string[] };
}

/** A step of a partition, committed atomically by commit-6.lua. */
export interface StepCommit {
  actors: ActorCommit[];
  /** De-dup members of every event id this step consumes (applied or dead-lettered). */
  dedup: string[];
  /** Outputs (the stored form of an `Output`), to the outputs stream. */
  outputs: string[];
  /** Mail and armed timers, to the mail stream (relayed after the commit). */
  mail: OutboxEntry[];
  deadLetters: string[];
  replies: { askId: string; body: string }[];
  /** Actors stopped by supervision, or resumed. */
  keyStates: { op: 'stop' | 'resume'; ref: string; body: string }[];
  /**
   * Set when the events were applied without reading the de-dup records and
   * the stopped set first (`precheck`): the script then also refuses the
   * commit if one of the actors is stopped (StoppedActorCommitError); an
   * applied event id is always refused (DuplicateCommitError).
   */
  unchecked?: boolean;
  /**
   * Checked in the same script before anything is written: the committer holds
   * every job in progress. It replaces a separate read of the queue before
   * applying (one round trip less per batch).
   */
  queue?: QueueGuard;
}

/** What a commit returns (the script also returns the id of its outputs record, which nothing reads). */
export interface CommitResult {
  /** Waiting jobs in the guarded queue right after the commit (-1: no guard). */
  waiting: number;
}

export interface CommitLimits {
  /** De-dup records older than this are dropped. */
  dedupRetainMs: number;
  /** At most this many de-dup records per partition. */
  dedupMaxEntries: number;
  /** Approximate MAXLEN of the outbox and dead-letter streams. */
  streamMaxLen: number;
  replyTtlMs: number;
}

function append(to: (string | number)[], items: readonly (string | number)[]): void {
  for (let i = 0; i < items.length; i++) to.push(items[i]!);
}

/** The atomic commit of a step, and the de-dup pre-check that precedes it. */
export class CommitStore {
  constructor(
    private readonly client: RedisClient,
    private readonly limits: CommitLimits,
  ) {
    registerScripts(client);
  }

  /**
   * Before applying a batch, in one round trip: which de-dup members are
   * already recorded (the commit checks them again before writing), and which
   * of these actors are stopped.
   */
  async precheck(keys: PartitionKeys, members: string[], refs: string[]): Promise<{ applied: boolean[]; stopped: Set<string> }> {
    if (members.length === 0) return { applied: [], stopped: new Set() };
    const distinct = [...new Set(refs)];
    // Two commands written back to back on one connection: one round trip. (Not an ioredis
    // pipeline: building one copies every script defined on the client, BullMQ's included.)
    const [scores, flags] = await Promise.all([
      this.client.zmscore(keys.dedup, ...members),
      distinct.length > 0 ? this.client.hmget(keys.stopped, ...distinct) : Promise.resolve([] as (string | null)[]),
    ]);
    return { applied: scores.map((s) => s !== null), stopped: new Set(distinct.filter((_, i) => flags[i] !== null)) };
  }

  /** Whether these de-dup members are recorded. */
  async applied(keys: PartitionKeys, members: string[]): Promise<boolean[]> {
    return (await this.precheck(keys, members, [])).applied;
  }

  /** Answer asks whose event was a duplicate (already applied): nothing else to commit. */
  async replyDuplicates(keys: PartitionKeys, askIds: string[]): Promise<void> {
    const body = JSON.stringify({ kind: 'duplicate' });
    await Promise.all(askIds.flatMap((id) => [this.client.rpush(keys.reply(id), body), this.client.pexpire(keys.reply(id), this.limits.replyTtlMs)]));
  }

  /**
   * Commit a step. Throws LeaseLostError, SeqConflictError,
   * DuplicateCommitError, StoppedActorCommitError or ForeignJobsActiveError,
   * having written nothing.
   */
  async commit(keys: PartitionKeys, lease: Lease, step: StepCommit, now = Date.now()): Promise<CommitResult> {
    const q = step.queue;
    const header: (string | number)[] = [
      lease.value,
      keys.prefix,
      now,
      now - this.limits.dedupRetainMs,
      this.limits.dedupMaxEntries,
      this.limits.streamMaxLen,
      this.limits.replyTtlMs,
      step.unchecked ? '1' : '0',
      q ? q.held : -1,
      q?.wakeMarker?.member ?? '',
    ];
    // The sections, packed into one argument (see packItems).
    const argv: (string | number)[] = [step.actors.length];
    // Per group only what every event needs; snapshots and expiries (rarer) name their group.
    const snapshots: (string | number)[] = [];
    const expiries: (string | number)[] = [];
    step.actors.forEach((a, g) => {
      argv.push(a.ref, a.expectedSeq, a.entries.length);
      a.entries.forEach((e, n) => argv.push(encodeEntry(e, a.sentJson?.[n])));
      if (a.snapshot) snapshots.push(g + 1, a.snapshot.seq, a.snapshot.version, JSON.stringify(a.snapshot.state), JSON.stringify(a.snapshot.timers ?? {}));
      if (a.ttlMs) expiries.push(g + 1, a.ttlMs);
    });
    argv.push(snapshots.length / 5);
    append(argv, snapshots);
    argv.push(expiries.length / 2);
    append(argv, expiries);
    argv.push(step.dedup.length);
    append(argv, step.dedup);
    // Outputs (to the outputs stream, all of the step's in one record: their JSON array text) and
    // mail (to the mail stream): two sections.
    argv.push(step.outputs.length);
    if (step.outputs.length > 0) argv.push(`[${step.outputs.join(',')}]`);
    argv.push(step.mail.length);
    for (const m of step.mail) argv.push(m.kind, m.body);
    argv.push(step.deadLetters.length);
    append(argv, step.deadLetters);
    argv.push(step.replies.length);
    for (const r of step.replies) argv.push(r.askId, r.body);
    argv.push(step.keyStates.length);
    for (const k of step.keyStates) argv.push(k.op, k.ref, k.body);
    const ack = q?.acknowledge ?? { ids: [], deleteKeys: [] };
    argv.push(ack.ids.length);
    append(argv, ack.ids);
    argv.push(ack.deleteKeys.length);
    append(argv, ack.deleteKeys);

    // Without a guard, the queue's keys are never read: any keys of the partition's slot do.
    const reply = await this.client.kfCommit(keys.lease, keys.dedup, keys.outbox, q?.activeKey ?? keys.lease, q?.waitingKey ?? keys.lease, q?.wakeMarker?.key ?? keys.lease, [...header, packItems(argv)]);
    const code = Number(reply[0]);
    if (code === 1) return { waiting: Number(reply[2]) };
    if (code === -1) throw new LeaseLostError(keys.partition, lease.value, String(reply[1]));
    if (code === -2) {
      const a = step.actors[Number(reply[1])];
      throw new SeqConflictError(a?.ref ?? '?', a?.expectedSeq ?? -1, Number(reply[2]));
    }
    if (code === -3) throw new DuplicateCommitError(String(reply[1]));
    if (code === -4) throw new StoppedActorCommitError(String(reply[1]));
    if (code === -5) throw new ForeignJobsActiveError(Number(reply[1]), q?.held ?? -1);
    throw new Error(`commit script returned unknown code ${String(reply[0])}`);
  }
}
