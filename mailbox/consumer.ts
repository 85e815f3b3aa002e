import { Queue, Worker, type Job } from 'bullmq';
import type { Redis, Cluster } from 'ioredis';
import { v4 as uuidv4 } from 'uuid';
import { QUEUE_NAME, eventCount, type MailboxJobData } from './envelope';

export type MailboxJob = Job<MailboxJobData>;

export interface ConsumerOptions {
  /** BullMQ prefix of the partition's queue. */
  prefix: string;
  /** Lock of a taken job; keep it at most the partition lease TTL. @default 30000 */
  lockDurationMs?: number;
  /** Longest a blocking fetch waits before returning empty (seconds). @default 1 */
  blockSeconds?: number;
  onError?: (err: Error) => void;
}

/**
 * BullMQ's messages (classes/finished-errors.js; the error carries no code) for
 * a job this consumer cannot complete because it does not hold it: no lock or
 * another's, the job gone, or no longer in the active list.
 */
const NOT_OUR_LOCK = /Missing lock|Lock mismatch|Missing key|not in the active state/i;

/** BullMQ's Worker, told from outside that its queue is drained (its protected `nextJobFromJobData` with no job). */
class MailboxWorker extends Worker<MailboxJobData> {
  /** The queue was found empty (by a commit): the next blocking fetch blocks at once, as after an empty fetch. */
  async markDrained(token: string): Promise<void> {
    await this.nextJobFromJobData(undefined, undefined, token);
  }
}

/**
 * The consuming side of one partition's queue, for its owner only. BullMQ's
 * Worker runs without a processor: jobs are taken in FIFO order with
 * `getNextJob` and acknowledged by the commit of their events (what
 * `acknowledgement` names), or with `ack` after it. BullMQ's own
 * retries and stalled-job checks are not used, because both reorder jobs; a job
 * left active by a dead owner is handed to the next owner by `leftovers()`.
 */
export class PartitionConsumer {
  private readonly worker: MailboxWorker;
  private readonly queue: Queue<MailboxJobData>;
  private readonly token = uuidv4();
  private closed = false;
  /**
   * Jobs waiting in the queue when last counted (by the last commit, see
   * `afterCommit`, or by `othersActive`): how many the next fetch takes at once.
   */
  private waitingHint = 0;
  private readonly onError: ((err: Error) => void) | undefined;

  constructor(
    private readonly connection: Redis | Cluster,
    opts: ConsumerOptions,
  ) {
    this.worker = new MailboxWorker(QUEUE_NAME, null, {
      connection,
      prefix: opts.prefix,
      autorun: false,
      lockDuration: opts.lockDurationMs ?? 30_000,
      drainDelay: opts.blockSeconds ?? 1,
      maxStalledCount: Number.MAX_SAFE_INTEGER,
    });
    this.onError = opts.onError;
    this.worker.on('error', (err) => opts.onError?.(err));
    this.queue = new Queue<MailboxJobData>(QUEUE_NAME, { connection, prefix: opts.prefix });
    this.queue.on('error', (err) => opts.onError?.(err));
  }

  /**
   * Take the next jobs in queue order: waits (up to blockSeconds) for the
   * first, then takes what is already waiting, up to `maxJobs` jobs or
   * `maxEvents` events. Jobs that are not the caller's may sit in the active
   * list (they come first, see `othersActive`): its commit checks that (see
   * QueueGuard in persistence), with `lists`.
   */
  async next(maxJobs: number, maxEvents: number, opts: { block?: boolean } = {}): Promise<MailboxJob[]> {
    if (this.closed) return [];
    const block = opts.block ?? true;
    const jobs: MailboxJob[] = [];
    let events = 0;
    // Take what waits in bursts of concurrent fetches (one round trip each): the first burst is
    // the backlog counted after the previous fetch (none: no blind, empty fetch at light load),
    // doubling while bursts come back full.
    let burst = Math.min(this.waitingHint, 64, maxJobs);
    this.waitingHint = 0;
    while (burst > 0 && jobs.length < maxJobs && events < maxEvents && !this.closed) {
      const taken = (await Promise.all(Array.from({ length: burst }, () => this.worker.getNextJob(this.token, { block: false })))).filter(
        (j): j is MailboxJob => j !== undefined,
      );
      jobs.push(...taken);
      for (const j of taken) events += Math.max(1, eventCount(j.data));
      if (taken.length < burst) break;
      burst = Math.min(burst * 2, 64, maxJobs - jobs.length);
    }
    if (jobs.length === 0 && !this.closed) {
      const t0 = Date.now();
      let job = await this.worker.getNextJob(this.token, { block });
      // After taking a job, BullMQ's next blocking fetch first looks once without blocking; when
      // that comes back empty at once, the call after it blocks: make it here rather than
      // returning an empty batch to the caller's loop.
      if (!job && block && !this.closed && Date.now() - t0 < 50) job = await this.worker.getNextJob(this.token, { block });
      if (job) jobs.push(job);
    }
    return jobs;
  }

  /**
   * The queue's lists of jobs in progress and waiting (a commit can check them:
   * see QueueGuard in persistence), and its wake-up marker: BullMQ's base
   * marker (member "0" of its marker set), added with every job and again
   * whenever a job is handed out, for other workers. This consumer is the only
   * one: after a commit that leaves nothing waiting, the marker would only wake
   * its next blocking fetch for an empty look (a second fetch per job at light
   * load), so the commit removes it.
   */
  get lists(): { activeKey: string; waitingKey: string; wakeMarker: { key: string; member: string } } {
    return { activeKey: this.queue.keys.active!, waitingKey: this.queue.keys.wait!, wakeMarker: { key: this.queue.keys.marker!, member: '0' } };
  }

  /**
   * What a guarded commit found waiting in the queue: sizes the next fetch's
   * burst, as `othersActive` does; none: the next fetch blocks at once.
   */
  afterCommit(waiting: number): void {
    this.waitingHint = Math.max(0, waiting);
    if (waiting === 0) this.worker.markDrained(this.token).catch((err: unknown) => this.onError?.(err instanceof Error ? err : new Error(String(err))));
  }

  /**
   * What a commit does to acknowledge these jobs in its own atomic step (see
   * QueueGuard in persistence): their ids leave the active list, and their
   * records go (the job hash, and the lock and log keys BullMQ keeps beside
   * it; the jobs are added with `removeOnComplete`). BullMQ's completion
   * event and counters are skipped: nothing of keyflow reads them.
   */
  acknowledgement(jobs: MailboxJob[]): { ids: string[]; deleteKeys: string[] } {
    const ids: string[] = [];
    const deleteKeys: string[] = [];
    for (const job of jobs) {
      if (job.id === undefined) continue;
      const key = this.queue.toKey(job.id);
      ids.push(job.id);
      deleteKeys.push(key, `${key}:lock`, `${key}:logs`);
    }
    return { ids, deleteKeys };
  }

  /**
   * Whether the active list holds more than the `mine` jobs this consumer
   * holds (those just taken included): jobs of a previous owner that died or
   * lost its lease holding them, or of a paused ex-owner that fetched after
   * losing it. They are older than anything taken now, so the caller then
   * applies `leftovers()` instead, which returns them all in the order Redis
   * took them off the queue (not always older than what this consumer just
   * took: a fetch whose reply was lost in a cut connection took jobs that a
   * re-sent fetch then followed). For when no commit checks it (a new lease,
   * an idle partition); ask it after `next()` returned, so the count includes
   * every job it took.
   */
  async othersActive(mine: number): Promise<boolean> {
    // One round trip for both lists: two commands written back to back on one connection (not
    // an ioredis pipeline, whose construction copies every script defined on the client). The
    // waiting count sizes the next fetch's burst.
    const [active, waiting] = await Promise.all([this.connection.llen(this.queue.keys.active!), this.connection.llen(this.queue.keys.wait!)]);
    this.waitingHint = waiting;
    return active > mine;
  }

  /**
   * Jobs in the active list that this consumer did not take (a previous owner
   * died or lost its lease holding them), oldest first. Their events must be
   * applied before anything newer; de-dup makes a second application harmless.
   */
  async leftovers(mine: ReadonlySet<string | undefined> = new Set()): Promise<MailboxJob[]> {
    const active = (await this.queue.getJobs(['active'], 0, -1, true)) as MailboxJob[];
    return active.filter((j) => j && j.id !== undefined && !mine.has(j.id));
  }

  /**
   * Acknowledge jobs whose events are committed, when their commit did not
   * (see `acknowledgement`): leftovers, and jobs that held parked events. A
   * job this consumer does not hold the lock of (a leftover, or a lock that
   * expired) is removed instead. (Completing a job without taking the next:
   * BullMQ's `fetchNext` reads the lock duration from the job's own queue
   * object, which a leftover, read from the queue, lacks; its script then
   * failed after moving the next job to the active list.)
   */
  async ack(jobs: MailboxJob[]): Promise<void> {
    await Promise.all(
      jobs.map(async (job) => {
        try {
          await job.moveToCompleted(null, this.token, false);
          return;
        } catch (err) {
          // Not our lock (a leftover, or a lock that expired): removed below. Anything else is reported.
          if (!NOT_OUR_LOCK.test(String((err as Error)?.message))) this.onError?.(err instanceof Error ? err : new Error(String(err)));
        }
        try {
          await job.remove();
        } catch {
          /* still locked by a previous owner, or already gone: the next owner's leftovers() sees it, de-dup makes it harmless */
        }
      }),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([this.worker.close(true), this.queue.close()]);
  }
}
