import type { Envelope, MailboxJob, PartitionConsumer, Producer } from '../mailbox';
import { decodeJobData, isNewerFormat, MAILBOX_FORMAT, partitionOf } from '../mailbox';
import {
  actorRef,
  CorruptRecordError,
  dedupMember,
  DuplicateCommitError,
  ForeignJobsActiveError,
  LeaseLostError,
  SeqConflictError,
  StoppedActorCommitError,
  toError,
  type CommitStore,
  type Lease,
  type LeaseStore,
  type OutboxStore,
  type PartitionKeys,
  type PartitionStateStore,
} from '../persistence';
import { KeySupervisor, type FailureSeverity } from '../supervisors';
import type { ActorHost, LiveActor } from './actor-host';
import { ActorStoppedError, RehydrationError, UnknownActorTypeError, VersionMismatchError } from './errors';
import type { MachineRunner, StepOutcome } from './machine-runner';
import { StepBuilder } from './step-builder';
import type { SupervisionEvent, SystemEvents } from './system-events';
import { machineEvent, toEnvelope, type ValidationLimits } from './validation';

export interface PartitionWorkerSettings {
  owner: string;
  leaseTtlMs: number;
  maxBatchJobs: number;
  maxBatchEvents: number;
  partitions: number;
  validation: ValidationLimits;
}

export interface PartitionWorkerDeps {
  keys: PartitionKeys;
  consumer: PartitionConsumer;
  host: ActorHost;
  runners: ReadonlyMap<string, MachineRunner>;
  leases: LeaseStore;
  commits: CommitStore;
  outbox: OutboxStore;
  producer: Producer;
  events: SystemEvents;
  partitionState: PartitionStateStore;
  now: () => number;
}

/** The control event `system.resume(type, key)` sends to a stopped actor. */
export const RESUME_EVENT_TYPE = '@keyflow/resume';

/** A job taken from the queue, acknowledged once all its events are settled. */
interface Hold {
  job: MailboxJob;
  open: number;
}

/** One event of a job, on its way through the partition. */
interface Item {
  env: Envelope;
  ref: string;
  member: string;
  hold: Hold;
  settled?: boolean;
}

/** A key whose step failed: its events wait, in order, for its restart. */
interface Parked {
  ref: string;
  /** Head = the event that failed. */
  backlog: Item[];
  retryAt: number;
  attempts: number;
  lastError: Error;
  seq: number;
}

interface Failure {
  error: Error;
  severity: FailureSeverity;
  seq: number;
}

type StepResult = { ok: true } | { ok: false; failure: Failure };
const STEP_OK: StepResult = { ok: true };
const NO_MAIL: readonly Envelope[] = Object.freeze([]);

/**
 * How bad a failure to rebuild an actor is, or undefined when it is not of
 * the actor's own making (Redis unreachable: retried, not supervised). A
 * snapshot with no migration path to this machine version is key-fatal: no
 * restart can fix it and no later event may pass it.
 */
function rehydrationFailure(err: unknown): FailureSeverity | undefined {
  if (err instanceof VersionMismatchError) return 'key-fatal';
  if (err instanceof RehydrationError || err instanceof CorruptRecordError) return 'restartable';
  return undefined;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** What a fresh batch's commit checks of the queue (see `handle`), and the jobs it may acknowledge. */
interface Guard {
  /** The jobs of the batch (those left in place excluded): the commit acknowledges them when it settles all their events. */
  readonly jobs: MailboxJob[];
  /** Jobs of the batch left in the active list on purpose (a newer mailbox format): not held, not others'. */
  readonly leftInPlace: number;
}

/** Signal within a partition worker: an unchecked attempt met a failing step; it is redone with the checks. */
class RecheckNeeded extends Error {}

/** How long a worker leaves a partition alone after meeting a job of a newer mailbox format. */
const STAND_DOWN_MS = 30_000;

/** After an unchecked commit was refused, this many batches read the de-dup records first again. */
const CHECKED_BATCHES_AFTER_REFUSAL = 50;

/**
 * With no jobs coming, how often the loop looks for jobs of another owner in
 * the active list (a paused ex-owner's late fetch). When jobs come, every
 * commit checks it (see `commit`).
 */
const IDLE_LEFTOVER_CHECK_MS = 1_000;

/**
 * The owner of one partition: holds its lease, takes its jobs in order, runs
 * each event through its actor, and commits each batch in one script before
 * acknowledging the jobs. One partition = one serial lane.
 */
export class PartitionWorker {
  private lease: Lease | undefined;
  private leaseValidUntil = 0;
  private closing = false;
  /** Incremented by the watchdog: a loop of an older generation stops. */
  private generation = 0;
  private progressAt = Date.now();
  private loopEnded = false;
  /** Waiting for jobs: nothing in hand, so close() may interrupt at once. */
  private fetching = false;
  private loop: Promise<void> | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private readonly supervisor: KeySupervisor;
  /** Jobs taken and not yet acknowledged. */
  private readonly holds = new Map<MailboxJob, Hold>();
  private readonly parked = new Map<string, Parked>();
  /** Supervision escalated: no processing until the partition is resumed. */
  private paused = false;
  /** Mail committed but not yet (known to be) relayed. */
  private relayPending = false;
  /** Committed events since start (for metrics and tests). */
  committedEvents = 0;
  /** Batches left that read de-dup records and stopped actors before applying (see `process`). */
  private checkedBatchesOwed = 0;
  /** Until then this worker does not take the partition's lease (see `standDown`). */
  private standDownUntil = 0;

  constructor(
    private readonly deps: PartitionWorkerDeps,
    private readonly settings: PartitionWorkerSettings,
  ) {
    this.supervisor = new KeySupervisor(deps.now);
  }

  get partition(): number {
    return this.deps.keys.partition;
  }

  get holdsLease(): boolean {
    return this.lease !== undefined && this.deps.now() < this.leaseValidUntil;
  }

  start(): void {
    this.loop ??= this.run(this.generation);
  }

  /** When the loop last went round (ms). */
  get lastProgressAt(): number {
    return this.progressAt;
  }

  /**
   * Watchdog: a loop that ended, or has not gone round for `stallMs` (an await
   * that never settles), is replaced by a new one. The old one can no longer
   * commit: its generation is stale and the lease it held is given up, so the
   * new loop takes the partition under a new epoch. Returns whether it restarted.
   */
  async restartIfStalled(stallMs: number): Promise<boolean> {
    if (this.closing || !this.loop) return false;
    const ended = this.loopEnded;
    if (!ended && this.deps.now() - this.progressAt < stallMs) return false;
    this.deps.events.emit('error', new Error(`partition ${this.partition}: loop ${ended ? 'ended' : `stalled for ${this.deps.now() - this.progressAt} ms`}; restarting it`), { partition: this.partition });
    this.generation++;
    const lease = this.lease;
    this.loseLease('watchdog restart');
    if (lease) await this.deps.leases.release(this.deps.keys, lease).catch(() => false);
    this.progressAt = this.deps.now();
    this.loopEnded = false;
    this.loop = this.run(this.generation);
    return true;
  }

  private async run(generation: number): Promise<void> {
    try {
      await this.runLoop(generation);
    } finally {
      if (generation === this.generation) this.loopEnded = true;
    }
  }

  private async runLoop(generation: number): Promise<void> {
    let failures = 0;
    while (!this.closing && generation === this.generation) {
      this.progressAt = this.deps.now();
      try {
        if (!this.assigned) {
          // Another live worker should own this partition: hand it over between two steps.
          if (this.lease) await this.handOver();
          await sleep(100);
          continue;
        }
        if (!this.holdsLease) {
          if (this.lease) this.loseLease('expired locally');
          const standingDown = this.standDownUntil - this.deps.now();
          if (standingDown > 0) {
            await sleep(Math.min(standingDown, 1_000));
            continue;
          }
          const got = await this.deps.leases.acquire(this.deps.keys, this.settings.owner, this.settings.leaseTtlMs);
          if (!got.acquired) {
            await sleep(Math.max(50, Math.min(got.remainingMs, this.settings.leaseTtlMs / 3)));
            continue;
          }
          this.onAcquired(got.lease);
          this.paused = await this.deps.partitionState.isPaused(this.deps.keys);
          await this.relayMail();
          // A previous owner's jobs left in the active list come before anything new: take them now.
          if (!this.paused && (await this.othersActive(0))) await this.handleLeftovers(got.lease);
          continue;
        }
        if (this.paused) {
          await sleep(250);
          await this.checkResumed();
          continue;
        }
        const lease = this.lease!;
        if (this.parked.size > 0) await this.retryParked(lease);
        // With parked keys waiting for their backoff, poll instead of blocking.
        const block = this.parked.size === 0;
        this.fetching = block;
        let jobs: MailboxJob[];
        try {
          jobs = await this.deps.consumer.next(this.settings.maxBatchJobs, this.settings.maxBatchEvents, { block });
        } finally {
          this.fetching = false;
        }
        if (jobs.length > 0 && !this.closing) await this.handle(jobs, lease);
        else if (!this.closing && this.deps.now() >= this.idleCheckAt && (await this.idleOthersActive())) await this.handleLeftovers(lease);
        else if (this.relayPending) await this.relayMail();
        else if (!block) await sleep(Math.max(1, Math.min(50, this.nextRetryAt() - this.deps.now())));
        this.supervisor.prune();
        failures = 0;
      } catch (err) {
        if (err instanceof LeaseLostError) {
          this.loseLease(err.message);
          continue;
        }
        if (this.closing) break;
        failures++;
        this.deps.events.emit('error', toError(err), { partition: this.partition });
        await sleep(Math.min(2_000, 50 * 2 ** Math.min(failures, 6)));
      }
    }
  }

  /**
   * Whether the membership says this worker should own the partition (set by
   * the system from the live workers). Only an assigned worker takes the lease.
   */
  assigned = true;

  /** Give the lease up at once, so the assigned worker takes over without waiting for the TTL. */
  private async handOver(): Promise<void> {
    const lease = this.lease;
    if (!lease) return;
    this.loseLease('handed over to the assigned worker');
    await this.deps.leases.release(this.deps.keys, lease).catch(() => false);
  }

  private nextRetryAt(): number {
    let t = Number.POSITIVE_INFINITY;
    for (const p of this.parked.values()) t = Math.min(t, p.retryAt);
    return t;
  }

  private onAcquired(lease: Lease): void {
    // Nothing taken under an earlier lease is held any more: those jobs are leftovers now,
    // found in the active list and applied first (de-dup makes a second application harmless).
    this.holds.clear();
    this.parked.clear();
    this.supervisor.reset();
    this.lease = lease;
    this.leaseValidUntil = this.deps.now() + this.settings.leaseTtlMs;
    this.deps.events.emit('leaseAcquired', { partition: this.partition, epoch: lease.epoch });
    clearInterval(this.renewTimer);
    this.renewTimer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.settings.leaseTtlMs / 3)));
    this.renewTimer.unref();
  }

  private async renew(): Promise<void> {
    const lease = this.lease;
    if (!lease || this.closing) return;
    const startedAt = this.deps.now();
    try {
      if (await this.deps.leases.renew(this.deps.keys, lease, this.settings.leaseTtlMs)) {
        if (this.lease === lease) this.leaseValidUntil = startedAt + this.settings.leaseTtlMs;
      } else if (this.lease === lease) {
        this.loseLease('taken over or expired');
      }
    } catch (err) {
      this.deps.events.emit('error', toError(err), { partition: this.partition });
    }
  }

  private loseLease(reason: string): void {
    if (!this.lease) return;
    const epoch = this.lease.epoch;
    this.lease = undefined;
    this.leaseValidUntil = 0;
    clearInterval(this.renewTimer);
    this.deps.host.dropPartition(this.partition);
    // Taken jobs are not acknowledged: the next owner finds them in the active list and applies them first.
    this.holds.clear();
    this.parked.clear();
    this.supervisor.reset();
    this.paused = false;
    this.deps.events.emit('leaseLost', { partition: this.partition, epoch, reason });
  }

  /**
   * Process jobs until their events are committed (or the lease is lost), then
   * acknowledge the settled ones. The commit of jobs just fetched checks that
   * no others sit in the active list (see `othersActive`): if some do, nothing
   * is written, the batch is put back and the leftovers, which include it, are
   * handled instead.
   */
  private async handle(fetched: MailboxJob[], lease: Lease, fresh = true): Promise<void> {
    if (lease !== this.lease) throw new LeaseLostError(this.partition, lease.value, '(lost while fetching)');
    // A job of a newer format ends the batch: the jobs before it are handled, it and those after wait.
    const newerAt = fetched.findIndex((j) => isNewerFormat(j.data) !== undefined);
    const jobs = newerAt >= 0 ? fetched.slice(0, newerAt) : fetched;
    // The commit's guard: every job in progress is one this worker holds, or one it leaves there.
    const guard: Guard | undefined = fresh ? { jobs, leftInPlace: fetched.length - jobs.length } : undefined;
    // Fresh jobs in a healthy partition are applied unchecked (see `process`); leftovers never are.
    let unchecked = fresh && this.checkedBatchesOwed === 0 && this.parked.size === 0;
    if (this.checkedBatchesOwed > 0) this.checkedBatchesOwed--;
    const items = this.itemsOf(jobs);
    let acknowledged: boolean;
    try {
      acknowledged = await this.withRetries(() => {
        const attemptUnchecked = unchecked;
        unchecked = false;
        return this.process(items, lease, guard, attemptUnchecked);
      });
    } catch (err) {
      if (!(err instanceof ForeignJobsActiveError)) throw err;
      for (const j of jobs) this.holds.delete(j);
      return this.handleLeftovers(lease);
    }
    if (acknowledged) {
      for (const j of jobs) this.holds.delete(j);
      if (this.relayPending) await this.relayMail();
    } else await this.settle(jobs);
    if (newerAt >= 0) await this.standDown(fetched[newerAt]!);
  }

  /**
   * A job written by a newer keyflow (a rolling deploy): this worker cannot
   * read it, and must neither drop it nor apply anything after it. It gives
   * the partition up, leaving the job and those after it in the active list,
   * where the next owner finds them first, and does not take the partition
   * again for STAND_DOWN_MS, so an upgraded worker gets it meanwhile.
   */
  private async standDown(job: MailboxJob): Promise<void> {
    const v = isNewerFormat(job.data);
    this.deps.events.emit(
      'error',
      new Error(
        `partition ${this.partition}: job ${job.id} has mailbox format v${v}, newer than this worker reads (up to v${MAILBOX_FORMAT}); ` +
          `it is left in place for an upgraded worker, and this worker leaves the partition alone for ${STAND_DOWN_MS / 1000} s`,
      ),
      { partition: this.partition },
    );
    this.standDownUntil = this.deps.now() + STAND_DOWN_MS;
    const lease = this.lease;
    this.loseLease(`stood down: job ${job.id} has a newer mailbox format (v${v})`);
    if (lease) await this.deps.leases.release(this.deps.keys, lease).catch(() => false);
  }

  /** Every job in the active list that this worker does not hold, oldest first (see `othersActive`). */
  private async handleLeftovers(lease: Lease): Promise<void> {
    await this.pendingAck;
    const jobs = await this.deps.consumer.leftovers(new Set([...this.holds.keys()].map((j) => j.id)));
    if (jobs.length > 0) await this.handle(jobs, lease, false);
  }

  /**
   * Run a processing attempt until it commits. A stale in-memory actor
   * (seq conflict) is rebuilt and the attempt repeated at once; a Redis error
   * is retried with backoff while the lease holds. Returns what the attempt that committed returned.
   */
  private async withRetries<T>(attempt: () => Promise<T>): Promise<T> {
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        if (err instanceof LeaseLostError || err instanceof ForeignJobsActiveError) throw err;
        if (this.closing) throw new LeaseLostError(this.partition, this.lease?.value ?? '', '(closing)');
        if (err instanceof DuplicateCommitError || err instanceof StoppedActorCommitError || err instanceof RecheckNeeded) {
          this.checkedBatchesOwed = CHECKED_BATCHES_AFTER_REFUSAL;
        } else if (!(err instanceof SeqConflictError)) {
          this.deps.events.emit('error', toError(err), { partition: this.partition });
          await sleep(Math.min(2_000, 20 * 2 ** Math.min(n, 7)));
        }
        if (!this.holdsLease) throw new LeaseLostError(this.partition, this.lease?.value ?? '', '(expired while retrying)');
      }
    }
  }

  private itemsOf(jobs: MailboxJob[]): Item[] {
    const items: Item[] = [];
    for (const job of jobs) {
      const envs = decodeJobData(job.data);
      const hold: Hold = { job, open: 0 };
      this.holds.set(job, hold);
      if (!envs) {
        this.deps.events.emit('error', new Error(`job ${job.id} of partition ${this.partition} is not keyflow's: acknowledged without effect`), { partition: this.partition });
        continue;
      }
      for (const env of envs) {
        const ref = actorRef(env.type, env.key);
        items.push({ env, ref, member: dedupMember(ref, env.id), hold });
        hold.open++;
      }
    }
    return items;
  }

  /** Acknowledge jobs whose events are all settled; keep the others (a parked key holds them). */
  private async settle(jobs: MailboxJob[]): Promise<void> {
    const done = jobs.filter((j) => (this.holds.get(j)?.open ?? 0) === 0);
    for (const j of done) this.holds.delete(j);
    // The acknowledgement (never rejects) goes on while the loop fetches the next jobs: their
    // events are committed already. What counts or lists the active list waits for it (`acked`).
    const previous = this.pendingAck;
    this.pendingAck = Promise.all([previous, this.deps.consumer.ack(done)]).then(() => undefined);
    if (this.relayPending) await this.relayMail();
  }

  /** Acknowledgements in flight (see `settle`). */
  private pendingAck: Promise<void> = Promise.resolve();

  /** When the idle loop next looks for others' jobs in the active list. */
  private idleCheckAt = 0;

  private idleOthersActive(): Promise<boolean> {
    this.idleCheckAt = this.deps.now() + IDLE_LEFTOVER_CHECK_MS;
    return this.othersActive(this.holds.size);
  }

  /** Whether others' jobs sit in the active list, once this worker's acknowledgements landed. */
  private async othersActive(mine: number): Promise<boolean> {
    await this.pendingAck;
    return this.deps.consumer.othersActive(mine);
  }

  /**
   * Apply and commit a batch. Items of a parked key join its backlog (its
   * order is kept); a failing step parks its key, or gets the policy's final
   * word at once.
   *
   * `unchecked`: skip the read of de-dup records and stopped actors before
   * applying (one round trip less per batch). The commit script refuses the
   * batch if an event was already applied or an actor is stopped, and a
   * failing step aborts the attempt: either way nothing was written, the
   * touched actors are dropped and the batch is redone checked, as are the
   * next batches for a while. Duplicates and stopped actors are rare, so
   * most batches save the round trip; a redo costs one.
   *
   * `guard` (a fresh batch): the commit checks the queue, and when the attempt
   * settles every event of the batch it also acknowledges the batch's jobs.
   * Returns whether it did (else the caller acknowledges the settled jobs).
   */
  private async process(items: Item[], lease: Lease, guard?: Guard, unchecked = false): Promise<boolean> {
    const { keys, commits, host, runners, now } = this.deps;
    const pendingItems = items.filter((it) => !it.settled);
    if (unchecked && pendingItems.some((it) => it.env.event.type === RESUME_EVENT_TYPE)) unchecked = false;
    const { applied, stopped } = unchecked
      ? { applied: [] as boolean[], stopped: new Set<string>() }
      : await commits.precheck(
          keys,
          pendingItems.map((it) => it.member),
          pendingItems.map((it) => it.ref),
        );
    // Rehydrate the cold actors of the batch together (one pipelined round trip).
    const cold = new Map<string, Envelope>();
    pendingItems.forEach((it, i) => {
      if (!applied[i] && runners.has(it.env.type) && !this.parked.has(it.ref) && !host.peek(it.ref)) cold.set(it.ref, it.env);
    });
    await Promise.allSettled([...cold].map(([ref, e]) => host.get(keys, e.type, e.key, ref)));

    const step = new StepBuilder(runners);
    const touched = new Map<string, LiveActor>();
    const seen = new Set<string>();
    const duplicateAsks: string[] = [];
    const settledHere: Item[] = [];
    const parkedHere: Item[] = [];
    let acknowledged = false;
    try {
      for (let i = 0; i < pendingItems.length; i++) {
        const it = pendingItems[i]!;
        if (applied[i] || seen.has(it.member)) {
          if (it.env.ask) duplicateAsks.push(it.env.ask);
          settledHere.push(it);
          continue;
        }
        seen.add(it.member);
        const parked = this.parked.get(it.ref);
        if (parked) {
          parked.backlog.push(it);
          parkedHere.push(it);
          continue;
        }
        if (it.env.event.type === RESUME_EVENT_TYPE) {
          if (stopped.delete(it.ref)) step.resume(it.ref, it.member);
          settledHere.push(it);
          continue;
        }
        if (stopped.has(it.ref)) {
          step.deadLetter(it.ref, it.env, new ActorStoppedError(it.env.type, it.env.key), 0, now());
          settledHere.push(it);
          continue;
        }
        const attempt = this.tryStep(step, touched, it);
        const result = attempt instanceof Promise ? await attempt : attempt;
        if (!result.ok && unchecked) throw new RecheckNeeded();
        if (result.ok || this.onFailure(step, it, result.failure, 1) === 'settled') {
          settledHere.push(it);
          if (step.stops(it.ref)) stopped.add(it.ref);
        } else parkedHere.push(it);
      }
      // A fresh batch settled whole (the usual case) is acknowledged by its commit: no separate
      // acknowledgement, and no window in which its events are committed and its jobs still queued.
      acknowledged = guard !== undefined && parkedHere.length === 0;
      await this.commit(step, lease, unchecked, guard, acknowledged);
    } catch (err) {
      for (const a of touched.values()) host.drop(a.ref);
      // Undo the parking of this attempt: it is repeated from scratch.
      for (const it of parkedHere) this.unpark(it);
      throw err;
    }
    for (const it of settledHere) this.settleItem(it);
    if (duplicateAsks.length > 0) await commits.replyDuplicates(keys, duplicateAsks);
    return acknowledged;
  }

  /**
   * One live step of an item into `step`. The actor is rehydrated when cold; a
   * failure to rebuild it is a failed step. Synchronous when the actor is in
   * memory (the usual case: no promise per event).
   */
  private tryStep(step: StepBuilder, touched: Map<string, LiveActor>, it: Item): StepResult | Promise<StepResult> {
    const runner = this.deps.runners.get(it.env.type);
    if (!runner) return { ok: false, failure: { error: new UnknownActorTypeError(it.env.type, [...this.deps.runners.keys()]), severity: 'terminal', seq: 0 } };
    let actor = touched.get(it.ref);
    if (!actor) {
      actor = this.deps.host.touch(it.ref);
      if (!actor) return this.tryStepCold(step, touched, runner, it);
      touched.set(it.ref, actor);
    }
    return this.stepLive(step, runner, actor, it);
  }

  private async tryStepCold(step: StepBuilder, touched: Map<string, LiveActor>, runner: MachineRunner, it: Item): Promise<StepResult> {
    let actor: LiveActor;
    try {
      actor = await this.deps.host.get(this.deps.keys, it.env.type, it.env.key, it.ref);
    } catch (err) {
      const severity = rehydrationFailure(err);
      if (!severity) throw err;
      return { ok: false, failure: { error: toError(err), severity, seq: 0 } };
    }
    touched.set(it.ref, actor);
    return this.stepLive(step, runner, actor, it);
  }

  private stepLive(step: StepBuilder, runner: MachineRunner, actor: LiveActor, it: Item): StepResult {
    if (it.env.timer) {
      // A timer cancelled or re-armed since this firing was scheduled: dropped, nothing committed.
      const pending = actor.timers[it.env.timer.id];
      if (!pending || pending.token !== it.env.timer.token) return STEP_OK;
    }
    const outcome = this.stepOnce(runner, actor, it.env);
    if (!outcome.ok) return { ok: false, failure: { error: outcome.error, severity: outcome.severity, seq: actor.seq } };
    step.apply(actor, it.env, outcome.snapshot, outcome.effects, outcome.mail ?? NO_MAIL, this.deps.now(), it.member);
    return STEP_OK;
  }

  /**
   * A failed step: ask the supervisor. 'restart' parks the key (its later
   * events wait behind this one) until the backoff passed; the final word
   * dead-letters, stops the key, or pauses the partition.
   */
  private onFailure(step: StepBuilder, it: Item, failure: Failure, attempts: number): 'settled' | 'parked' {
    const { env } = it;
    const runner = this.deps.runners.get(env.type);
    const policy = runner?.def.supervision;
    const directive = policy ? this.supervisor.onFailure(it.ref, policy, failure.severity) : ({ kind: 'dead-letter', restarts: 0 } as const);
    const info = { type: env.type, key: env.key, eventId: env.id, seq: failure.seq, error: failure.error, attempts };
    this.deps.host.drop(it.ref);
    switch (directive.kind) {
      case 'restart': {
        const parked = this.park(it, failure, attempts);
        parked.retryAt = this.deps.now() + directive.delayMs;
        return 'parked';
      }
      case 'dead-letter':
        step.deadLetter(it.ref, env, failure.error, attempts, this.deps.now());
        this.deps.events.emit('deadLettered', info);
        return 'settled';
      case 'stop':
        step.deadLetter(it.ref, env, failure.error, attempts, this.deps.now());
        step.stop(it.ref, env.type, env.key, failure.error, this.deps.now());
        this.deps.events.emit('deadLettered', info);
        this.deps.events.emit('stopped', info);
        return 'settled';
      case 'escalate': {
        this.park(it, failure, attempts).retryAt = Number.POSITIVE_INFINITY;
        this.pause(info);
        return 'parked';
      }
    }
  }

  /** Park a key behind its failed event (kept at the head of its backlog). */
  private park(it: Item, failure: Failure, attempts: number): Parked {
    let parked = this.parked.get(it.ref);
    if (!parked) {
      parked = { ref: it.ref, backlog: [it], retryAt: 0, attempts, lastError: failure.error, seq: failure.seq };
      this.parked.set(it.ref, parked);
    }
    parked.attempts = attempts;
    parked.lastError = failure.error;
    parked.seq = failure.seq;
    return parked;
  }

  private unpark(it: Item): void {
    const parked = this.parked.get(it.ref);
    if (!parked) return;
    parked.backlog = parked.backlog.filter((x) => x !== it);
    if (parked.backlog.length === 0) this.parked.delete(it.ref);
  }

  private settleItem(it: Item): void {
    if (it.settled) return;
    it.settled = true;
    it.hold.open--;
  }

  /** Retry the parked keys whose backoff has passed: restart (rebuild from the store), then their backlog in order. */
  private async retryParked(lease: Lease): Promise<void> {
    const now = this.deps.now();
    for (const parked of [...this.parked.values()]) {
      if (this.closing || this.paused || parked.retryAt > now) continue;
      await this.withRetries(() => this.retryKey(parked, lease));
    }
    const jobs = [...this.holds.keys()];
    await this.settle(jobs);
  }

  private async retryKey(parked: Parked, lease: Lease): Promise<void> {
    const { host } = this.deps;
    const head = parked.backlog[0];
    if (!head) {
      this.parked.delete(parked.ref);
      return;
    }
    host.drop(parked.ref);
    const attempts = parked.attempts + 1;
    this.deps.events.emit('restarted', { type: head.env.type, key: head.env.key, eventId: head.env.id, seq: parked.seq, error: parked.lastError, attempts });
    const step = new StepBuilder(this.deps.runners);
    const touched = new Map<string, LiveActor>();
    const settledHere: Item[] = [];
    let stopped = false;
    try {
      let first = true;
      for (const it of [...parked.backlog]) {
        if (stopped) {
          step.deadLetter(it.ref, it.env, new ActorStoppedError(it.env.type, it.env.key), 0, this.deps.now());
          settledHere.push(it);
          continue;
        }
        if (it.env.event.type === RESUME_EVENT_TYPE) {
          settledHere.push(it);
          continue;
        }
        const result = await this.tryStep(step, touched, it);
        if (result.ok) {
          if (first) this.deps.events.emit('recovered', { type: it.env.type, key: it.env.key, eventId: it.env.id, seq: touched.get(it.ref)?.seq ?? 0, error: parked.lastError, attempts });
          settledHere.push(it);
          first = false;
          continue;
        }
        const verdict = this.onFailure(step, it, result.failure, first ? attempts : 1);
        first = false;
        if (verdict === 'parked') break;
        settledHere.push(it);
        if (step.stops(it.ref)) stopped = true;
      }
      await this.commit(step, lease);
    } catch (err) {
      for (const a of touched.values()) host.drop(a.ref);
      throw err;
    }
    parked.backlog = parked.backlog.filter((it) => !settledHere.includes(it));
    for (const it of settledHere) this.settleItem(it);
    if (parked.backlog.length === 0) this.parked.delete(parked.ref);
    else if (parked.backlog[0] !== head) parked.attempts = 1;
    else parked.attempts = attempts;
  }

  /** Escalation: stop processing this partition until it is resumed (durably flagged for any owner). */
  private pause(info: SupervisionEvent): void {
    if (this.paused) return;
    this.paused = true;
    this.deps.events.emit('escalated', { ...info, partition: this.partition });
    void this.deps.partitionState.pause(this.deps.keys, JSON.stringify({ ...info, error: info.error.message, at: this.deps.now() })).catch((err: unknown) => {
      this.deps.events.emit('error', toError(err), { partition: this.partition });
    });
  }

  /** While paused: has someone resumed the partition? Then retry the parked keys with fresh restart intensity. */
  private async checkResumed(): Promise<void> {
    if (await this.deps.partitionState.isPaused(this.deps.keys)) return;
    this.paused = false;
    this.supervisor.reset();
    for (const parked of this.parked.values()) {
      parked.retryAt = 0;
      parked.attempts = 0;
    }
  }

  /** One live step; the mail it sends is validated as a send would be (a bad target fails the step). */
  private stepOnce(runner: MachineRunner, actor: LiveActor, env: Envelope): StepOutcome & { mail?: Envelope[] } {
    const outcome = runner.step(actor.snapshot, machineEvent(env), actor.initialActions);
    if (!outcome.ok || outcome.effects.mail.length === 0) return outcome;
    try {
      const mail = outcome.effects.mail.map((m, n) =>
        toEnvelope({ type: m.to.type, key: m.to.key, event: m.event, id: StepBuilder.mailId(actor.ref, actor.seq + 1, n), ts: env.ts }, this.settings.validation, env.ts),
      );
      return { ...outcome, mail };
    } catch (err) {
      return { ok: false, error: toError(err), severity: 'terminal' };
    }
  }

  /**
   * Commit a step under the lease the work was taken with (a fencing token: a
   * loop of an older lease is refused by Redis). Returns whether it carried
   * mail. On failure the touched actors are dropped by the caller.
   */
  private async commit(step: StepBuilder, lease: Lease, unchecked = false, guard?: Guard, acknowledge = false): Promise<boolean> {
    // A guarded step with nothing to write still goes to the script: its jobs must be the oldest in
    // progress (and the lease valid) before they are acknowledged.
    if (step.empty && !guard) return false;
    if (lease !== this.lease || !this.holdsLease) throw new LeaseLostError(this.partition, lease.value, '(no valid lease)');
    const commit = step.build();
    commit.unchecked = unchecked;
    if (guard) {
      // The count must include every acknowledgement sent so far (they go first on the same connection).
      await this.pendingAck;
      commit.queue = { ...this.deps.consumer.lists, held: this.holds.size + guard.leftInPlace };
      if (acknowledge) commit.queue.acknowledge = this.deps.consumer.acknowledgement(guard.jobs);
    }
    const result = await this.deps.commits.commit(this.deps.keys, lease, commit, this.deps.now());
    if (result.waiting >= 0) this.deps.consumer.afterCommit(result.waiting);
    step.committed(commit);
    this.committedEvents += commit.dedup.length;
    // Before the listeners: the mail is committed, whatever they do.
    if (step.hasMail) this.relayPending = true;
    const applied = this.deps.events.listenerCount('committed') > 0 ? step.appliedEvents() : [];
    if (applied.length > 0) {
      try {
        this.deps.events.emit('committed', { partition: this.partition, events: applied });
      } catch (err) {
        // A listener's bug is not the step's: it is committed.
        this.deps.events.emit('error', toError(err), { partition: this.partition });
      }
    }
    return step.hasMail;
  }

  /**
   * Move committed mail from this partition's mail stream to the target
   * partitions' queues. A failed relay is retried (the mail stays in the
   * stream until relayed); a repeated one is harmless: mail ids are
   * deterministic and de-duplicated by the target.
   */
  private async relayMail(): Promise<void> {
    const { outbox, keys, producer } = this.deps;
    this.relayPending = true;
    for (;;) {
      const records = await outbox.pendingMail(keys, 500);
      if (records.length > 0) {
        const byPartition = new Map<number, Envelope[]>();
        /**
         * Durable timers armed in this stretch of the stream, the latest arming per actor and
         * timer id: an earlier arming of the same timer is superseded (its firing would be
         * dropped as stale when it came), so it needs no delayed job of its own.
         */
        const timers = new Map<string, { env: Envelope; dueAt: number }>();
        for (const r of records) {
          if (r.kind === 'timer') {
            const armed = JSON.parse(r.body) as { env: Envelope; dueAt: number };
            timers.set(`${armed.env.type}\u0000${armed.env.key}\u0000${armed.env.timer?.id}`, armed);
            continue;
          }
          const env = JSON.parse(r.body) as Envelope;
          const p = partitionOf(env.type, env.key, this.settings.partitions);
          let list = byPartition.get(p);
          if (!list) byPartition.set(p, (list = []));
          list.push(env);
        }
        await Promise.all([
          // A delayed job with a deterministic id: relaying a timer twice adds it once.
          ...[...timers.values()].map(({ env, dueAt }) => producer.enqueueDelayed(this.partition, env, Math.max(0, dueAt - this.deps.now()), `t-${StepBuilder.timerJobId(env)}`)),
          ...[...byPartition].map(([p, envs]) => producer.enqueue(p, envs)),
        ]);
        await outbox.mailRelayed(keys, records[records.length - 1]!.position);
      }
      if (records.length < 500) break;
    }
    this.relayPending = false;
  }

  /** Stop taking work, finish the step in hand, give the lease up. Idempotent. */
  async close(): Promise<void> {
    if (this.closing) return this.loop;
    this.closing = true;
    clearInterval(this.renewTimer);
    // A blocked fetch holds nothing: interrupt it. A step in hand is finished first.
    if (this.fetching) {
      await this.pendingAck;
      await this.deps.consumer.close();
    }
    await this.loop;
    await this.pendingAck;
    await this.deps.consumer.close();
    const lease = this.lease;
    this.lease = undefined;
    if (lease) {
      try {
        await this.deps.leases.release(this.deps.keys, lease);
      } catch {
        /* Redis gone: the lease expires by itself */
      }
    }
  }
}
