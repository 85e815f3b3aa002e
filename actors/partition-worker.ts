import type { Envelope, MailboxJob, PartitionConsumer, Producer } from '../mailbox';
import { partitionOf } from '../mailbox';
import {
  actorRef,
  dedupMember,
  DuplicateCommitError,
  LeaseLostError,
  SeqConflictError,
  toError,
  type CommitStore,
  type Lease,
  type LeaseStore,
  type OutboxStore,
  type PartitionKeys,
} from '../persistence';
import { backoffMs, RestartIntensity } from '../supervisors';
import type { ActorHost, LiveActor } from './actor-host';
import { UnknownActorTypeError } from './errors';
import type { MachineRunner, StepOutcome } from './machine-runner';
import { StepBuilder } from './step-builder';
import type { SystemEvents } from './system-events';
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
  now: () => number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Malformed job data (not written by keyflow): reported and acknowledged, never applied. */
function envelopesOf(job: MailboxJob): Envelope[] | undefined {
  const d = job.data as unknown as { v?: unknown; events?: unknown };
  if (!d || d.v !== 1 || !Array.isArray(d.events)) return undefined;
  return (d.events as Envelope[]).filter(
    (e) => e && typeof e.id === 'string' && typeof e.type === 'string' && typeof e.key === 'string' && typeof e.event === 'object' && e.event !== null,
  );
}

/**
 * The owner of one partition: holds its lease, takes its jobs in order, runs
 * each event through its actor, and commits each batch in one script before
 * acknowledging the jobs. One partition = one serial lane.
 */
export class PartitionWorker {
  private lease: Lease | undefined;
  private leaseValidUntil = 0;
  private closing = false;
  /** Waiting for jobs: nothing in hand, so close() may interrupt at once. */
  private fetching = false;
  private loop: Promise<void> | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private readonly intensity = new Map<string, RestartIntensity>();
  /** Mail committed but not yet (known to be) relayed. */
  private relayPending = false;
  /** Committed events since start (for metrics and tests). */
  committedEvents = 0;

  constructor(
    private readonly deps: PartitionWorkerDeps,
    private readonly settings: PartitionWorkerSettings,
  ) {}

  get partition(): number {
    return this.deps.keys.partition;
  }

  get holdsLease(): boolean {
    return this.lease !== undefined && this.deps.now() < this.leaseValidUntil;
  }

  start(): void {
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.closing) {
      try {
        if (!this.holdsLease) {
          if (this.lease) this.loseLease('expired locally');
          const got = await this.deps.leases.acquire(this.deps.keys, this.settings.owner, this.settings.leaseTtlMs);
          if (!got.acquired) {
            await sleep(Math.max(50, Math.min(got.remainingMs, this.settings.leaseTtlMs / 3)));
            continue;
          }
          this.onAcquired(got.lease);
          await this.relayMail();
          continue;
        }
        this.fetching = true;
        let jobs: MailboxJob[];
        try {
          jobs = await this.deps.consumer.next(this.settings.maxBatchJobs, this.settings.maxBatchEvents);
        } finally {
          this.fetching = false;
        }
        if (jobs.length > 0 && !this.closing) await this.handle(jobs);
        else if (this.relayPending) await this.relayMail();
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

  private onAcquired(lease: Lease): void {
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
    this.deps.events.emit('leaseLost', { partition: this.partition, epoch, reason });
  }

  /** Process jobs until their events are committed (or the lease is lost), then acknowledge them. */
  private async handle(jobs: MailboxJob[]): Promise<void> {
    let hasMail = false;
    for (let attempt = 1; ; attempt++) {
      try {
        hasMail = await this.process(jobs);
        break;
      } catch (err) {
        if (err instanceof LeaseLostError) throw err;
        if (this.closing) return;
        if (err instanceof SeqConflictError || err instanceof DuplicateCommitError) continue;
        this.deps.events.emit('error', toError(err), { partition: this.partition });
        await sleep(Math.min(2_000, 20 * 2 ** Math.min(attempt, 7)));
        if (!this.holdsLease) throw new LeaseLostError(this.partition, this.lease?.value ?? '', '(expired while retrying)');
      }
    }
    await this.deps.consumer.ack(jobs);
    if (hasMail) await this.relayMail();
  }

  /** Apply and commit the events of `jobs`. Returns whether mail was committed. */
  private async process(jobs: MailboxJob[]): Promise<boolean> {
    const { keys, commits, host, runners, now } = this.deps;
    const envelopes: Envelope[] = [];
    for (const job of jobs) {
      const envs = envelopesOf(job);
      if (!envs) this.deps.events.emit('error', new Error(`job ${job.id} of partition ${this.partition} is not keyflow's: acknowledged without effect`), { partition: this.partition });
      else envelopes.push(...envs);
    }
    const members = envelopes.map((e) => dedupMember(actorRef(e.type, e.key), e.id));
    const applied = await commits.applied(keys, members);

    // Rehydrate the cold actors of the batch together (one pipelined round trip).
    const cold = new Map<string, Envelope>();
    envelopes.forEach((e, i) => {
      if (!applied[i] && runners.has(e.type) && !host.peek(this.partition, e.type, e.key)) cold.set(actorRef(e.type, e.key), e);
    });
    await Promise.allSettled([...cold.values()].map((e) => host.get(keys, e.type, e.key)));

    const touched = new Map<string, LiveActor>();
    const seen = new Set<string>();
    const duplicateAsks: string[] = [];
    let step = new StepBuilder(runners);
    let hasMail = false;
    try {
      for (let i = 0; i < envelopes.length; i++) {
        const env = envelopes[i]!;
        const member = members[i]!;
        if (applied[i] || seen.has(member)) {
          if (env.ask) duplicateAsks.push(env.ask);
          continue;
        }
        seen.add(member);
        const ref = actorRef(env.type, env.key);
        const runner = runners.get(env.type);
        if (!runner) {
          step.deadLetter(ref, env, new UnknownActorTypeError(env.type, [...runners.keys()]), 0, now());
          continue;
        }
        let actor = touched.get(ref);
        let outcome: StepOutcome;
        try {
          actor ??= await host.get(keys, env.type, env.key);
          touched.set(ref, actor);
          outcome = this.stepOnce(runner, actor, env);
        } catch (err) {
          outcome = { ok: false, error: toError(err), terminal: false };
        }
        if (!outcome.ok) {
          // Commit what came before, so a restart rebuilds exactly the committed state.
          hasMail = (await this.commit(step)) || hasMail;
          step = new StepBuilder(runners);
          touched.delete(ref);
          const result = await this.supervise(runner, env, ref, outcome);
          if (result.actor) touched.set(ref, result.actor);
          if (!result.ok) step.deadLetter(ref, env, result.error, result.attempts, now());
          else this.apply(step, result.actor!, env, result.outcome!);
          continue;
        }
        this.apply(step, actor!, env, outcome);
      }
      hasMail = (await this.commit(step)) || hasMail;
    } catch (err) {
      for (const a of touched.values()) host.drop(this.partition, a.ref);
      throw err;
    }
    if (duplicateAsks.length > 0) await commits.replyDuplicates(keys, duplicateAsks);
    return hasMail;
  }

  /** One live step; the mail it sends is validated as a send would be (a bad target fails the step). */
  private stepOnce(runner: MachineRunner, actor: LiveActor, env: Envelope): StepOutcome & { mail?: Envelope[] } {
    const outcome = runner.step(actor.snapshot, machineEvent(env), actor.initialActions);
    if (!outcome.ok) return outcome;
    try {
      const mail = outcome.effects.mail.map((m, n) => {
        const e = toEnvelope({ type: m.to.type, key: m.to.key, event: m.event, id: StepBuilder.mailId(actor.ref, actor.seq + 1, n), ts: env.ts }, this.settings.validation, env.ts);
        return e;
      });
      return { ...outcome, mail };
    } catch (err) {
      return { ok: false, error: toError(err), terminal: true };
    }
  }

  private apply(step: StepBuilder, actor: LiveActor, env: Envelope, outcome: StepOutcome & { mail?: Envelope[] }): void {
    if (!outcome.ok) return;
    step.apply(actor, env, machineEvent(env), outcome.snapshot, outcome.effects, outcome.mail ?? []);
  }

  /**
   * A failed step: restart the actor (rebuild it from snapshot + journal) and
   * retry the event with backoff, within the type's restart intensity.
   */
  private async supervise(
    runner: MachineRunner,
    env: Envelope,
    ref: string,
    first: StepOutcome & { ok: false },
  ): Promise<{ ok: true; actor: LiveActor; outcome: StepOutcome; attempts: number } | { ok: false; error: Error; attempts: number; actor?: LiveActor }> {
    const policy = runner.def.supervision;
    let intensity = this.intensity.get(ref);
    if (!intensity) {
      intensity = new RestartIntensity(policy, this.deps.now);
      this.intensity.set(ref, intensity);
    }
    let failure = first;
    let attempts = 1;
    while (!failure.terminal && intensity.tryRestart()) {
      await sleep(backoffMs(policy, intensity.count));
      if (!this.holdsLease) throw new LeaseLostError(this.partition, this.lease?.value ?? '', '(expired during backoff)');
      this.deps.host.drop(this.partition, ref);
      attempts++;
      this.deps.events.emit('restarted', { type: env.type, key: env.key, eventId: env.id, error: failure.error, attempts });
      let outcome: StepOutcome & { mail?: Envelope[] };
      let actor: LiveActor | undefined;
      try {
        actor = await this.deps.host.get(this.deps.keys, env.type, env.key);
        outcome = this.stepOnce(runner, actor, env);
      } catch (err) {
        outcome = { ok: false, error: toError(err), terminal: false };
      }
      if (outcome.ok) return { ok: true, actor: actor!, outcome, attempts };
      failure = outcome;
    }
    this.deps.events.emit('deadLettered', { type: env.type, key: env.key, eventId: env.id, error: failure.error, attempts });
    return { ok: false, error: failure.error, attempts };
  }

  /** Commit a step; returns whether it carried mail. On failure the touched actors are dropped by the caller. */
  private async commit(step: StepBuilder): Promise<boolean> {
    if (step.empty) return false;
    const lease = this.lease;
    if (!lease) throw new LeaseLostError(this.partition, '', '(no lease)');
    const commit = step.build();
    await this.deps.commits.commit(this.deps.keys, lease, commit, this.deps.now());
    step.committed(commit);
    this.committedEvents += commit.dedup.length;
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
        for (const r of records) {
          const env = JSON.parse(r.body) as Envelope;
          const p = partitionOf(env.type, env.key, this.settings.partitions);
          let list = byPartition.get(p);
          if (!list) byPartition.set(p, (list = []));
          list.push(env);
        }
        await Promise.all([...byPartition].map(([p, envs]) => producer.enqueue(p, envs)));
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
    if (this.fetching) await this.deps.consumer.close();
    await this.loop;
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
