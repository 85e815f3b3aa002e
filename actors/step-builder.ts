import { encodeEnvelope, EVENT_JSON, type Envelope, type WireEnvelope } from '../mailbox';
import { dedupMember, toError, type ActorCommit, type JournalEntry, type JsonObject, type OutboxEntry, type StepCommit } from '../persistence';
import { sentEvent } from './validation';
import { applyTimerOps, timerEventId } from './timers';
import { derivedId } from './ids';
import type { LiveActor } from './actor-host';
import type { MachineRunner, StepEffects } from './machine-runner';
import type { AnyMachineSnapshot } from 'xstate';
import { stateView } from './state-view';
import type { CommittedEvent } from './system-events';


/** An output of an actor, as `system.outputs()` yields it. */
export interface Output {
  /** Deterministic: the same committed emit always has the same id. */
  id: string;
  /** Source actor. */
  type: string;
  key: string;
  /** Seq of the event whose step emitted it. */
  seq: number;
  event: JsonObject;
}

export interface DeadLetterBody {
  id: string;
  type: string;
  key: string;
  ts: number;
  event: JsonObject;
  error: { name: string; message: string };
  attempts: number;
  at: number;
}

export type AskReply =
  | { kind: 'state'; state: ReturnType<typeof stateView> }
  | { kind: 'duplicate' }
  | { kind: 'dead-letter'; error: string };

const NONE: readonly string[] = Object.freeze([]);

/**
 * Collects what a sequence of applied events of one partition commits: the
 * journal entries per actor, outputs and mail for the outbox, de-dup records,
 * dead letters and ask replies. Applying mutates the live actor tentatively;
 * if the commit fails, the caller drops the touched actors.
 */
export class StepBuilder {
  private readonly groups = new Map<string, { actor: LiveActor; expectedSeq: number; entries: JournalEntry[]; sentJson: (string | undefined)[] }>();
  private readonly dedup: string[] = [];
  private readonly outputs: string[] = [];
  private readonly mail: OutboxEntry[] = [];
  private readonly deadLetters: string[] = [];
  private readonly replies: { askId: string; body: string }[] = [];
  private readonly keyStates: { op: 'stop' | 'resume'; ref: string; body: string }[] = [];
  hasMail = false;

  constructor(private readonly runners: ReadonlyMap<string, MachineRunner>) {}

  get empty(): boolean {
    return this.dedup.length === 0;
  }

  get touched(): LiveActor[] {
    return [...this.groups.values()].map((g) => g.actor);
  }

  /**
   * Record a successful step of `actor` on `env`. `mail` envelopes were
   * validated by the caller; `member` is the event's de-dup member, when the
   * caller has it already.
   */
  apply(actor: LiveActor, env: WireEnvelope, next: AnyMachineSnapshot, effects: StepEffects, mail: readonly Envelope[], now: number, member = dedupMember(actor.ref, env.id)): void {
    const seq = actor.seq + 1;
    // Timers: a firing consumes its timer; the step's operations arm and cancel others.
    let timers = actor.timers;
    if (env.timer && timers[env.timer.id]) {
      timers = { ...timers };
      delete timers[env.timer.id];
    }
    if (effects.timers.length > 0) timers = applyTimerOps(timers, effects.timers, seq, env.ts);
    const armed = effects.timers.length === 0 ? NONE : effects.timers.flatMap((o) => {
      if (o.op !== 'schedule') return [];
      const t = timers[o.id];
      if (!t || t.token !== seq) return [];
      const firing: Envelope = { id: timerEventId(o.id, seq), ts: t.ts, type: actor.type, key: actor.key, event: t.event, timer: { id: o.id, token: seq } };
      return [JSON.stringify({ env: firing, dueAt: now + o.delayMs })];
    });
    // Everything that can throw (serializing) happens before the first mutation.
    // The stored form of an `Output` ({ id, type, key, seq, event }), around the event's JSON text.
    actor.outputHead ??= `,"type":${JSON.stringify(actor.type)},"key":${JSON.stringify(actor.key)},"seq":`;
    const outputs = effects.outputs.map((json, n) => `{"id":"${derivedId(`${actor.ref}/${seq}/out/${n}`)}"${actor.outputHead}${seq},"event":${json}}`);
    let reply: string | undefined;
    if (env.ask) {
      const r: AskReply = { kind: 'state', state: stateView(actor.type, actor.key, next, seq, this.runners.get(actor.type)!.def.version) };
      reply = JSON.stringify(r);
    }

    let group = this.groups.get(actor.ref);
    if (!group) {
      group = { actor, expectedSeq: actor.seq, entries: [], sentJson: [] };
      this.groups.set(actor.ref, group);
    }
    // Stored as sent (its JSON text, kept by machineEvent): the journal adds the id and ts back on reading.
    const entry: JournalEntry = env.timer ? { seq, id: env.id, ts: env.ts, event: env.event, timer: env.timer.id } : { seq, id: env.id, ts: env.ts, event: env.event };
    group.entries.push(entry);
    group.sentJson.push(env[EVENT_JSON]);
    this.dedup.push(member);
    for (const body of outputs) this.outputs.push(body);
    for (const m of mail) this.mail.push({ kind: 'mail', body: encodeEnvelope(m) });
    for (const body of armed) this.mail.push({ kind: 'timer', body });
    if (mail.length > 0 || armed.length > 0) this.hasMail = true;
    if (reply !== undefined) this.replies.push({ askId: env.ask!, body: reply });
    actor.snapshot = next;
    actor.timers = timers;
    actor.seq = seq;
    actor.initialActions = undefined;
  }

  /** BullMQ job id of a timer firing (no ':' allowed): a digest of its actor and event id. */
  static timerJobId(env: Envelope): string {
    return derivedId(`${env.type}/${env.key}/${env.id}`);
  }

  /** Deterministic id of the n-th mail of an actor's step `seq`. */
  static mailId(ref: string, seq: number, n: number): string {
    return derivedId(`${ref}/${seq}/mail/${n}`);
  }

  /** Give up on an event: record it with its error, and its id as consumed. */
  deadLetter(ref: string, env: WireEnvelope, error: unknown, attempts: number, now: number): void {
    const err = toError(error);
    const body: DeadLetterBody = {
      id: env.id,
      type: env.type,
      key: env.key,
      ts: env.ts,
      event: sentEvent(env),
      error: { name: err.name, message: err.message },
      attempts,
      at: now,
    };
    this.deadLetters.push(JSON.stringify(body));
    this.dedup.push(dedupMember(ref, env.id));
    if (env.ask) {
      const reply: AskReply = { kind: 'dead-letter', error: `${err.name}: ${err.message}` };
      this.replies.push({ askId: env.ask, body: JSON.stringify(reply) });
    }
  }

  /** Stop an actor (supervision 'stop'): its later events go to dead letters until resumed. */
  stop(ref: string, type: string, key: string, error: unknown, now: number): void {
    const err = toError(error);
    this.keyStates.push({ op: 'stop', ref, body: JSON.stringify({ type, key, at: now, error: { name: err.name, message: err.message } }) });
  }

  /** Whether this step stops the actor. */
  stops(ref: string): boolean {
    return this.keyStates.some((k) => k.op === 'stop' && k.ref === ref);
  }

  /** Resume a stopped actor, consuming the control event that asked for it. */
  resume(ref: string, member: string): void {
    this.keyStates.push({ op: 'resume', ref, body: '' });
    this.dedup.push(member);
  }

  /** The commit, with a snapshot for every actor whose last one is `snapshotEvery` events old. */
  build(): StepCommit {
    const actors: ActorCommit[] = [];
    for (const { actor, expectedSeq, entries, sentJson } of this.groups.values()) {
      const runner = this.runners.get(actor.type)!;
      const commit: ActorCommit = { ref: actor.ref, expectedSeq, entries, sentJson, ttlMs: runner.def.ttlMs };
      if (actor.seq - actor.snapshotSeq >= runner.def.snapshotEvery) {
        try {
          commit.snapshot = { seq: actor.seq, version: runner.def.version, state: runner.persist(actor.snapshot), timers: actor.timers as unknown as JsonObject };
        } catch {
          // A context that is not JSON cannot be snapshotted; the journal still rebuilds it.
        }
      }
      actors.push(commit);
    }
    return { actors, dedup: this.dedup, outputs: this.outputs, mail: this.mail, deadLetters: this.deadLetters, replies: this.replies, keyStates: this.keyStates };
  }

  /** The events this step applies, per actor in order (for the `committed` system event). */
  appliedEvents(): CommittedEvent[] {
    const out: CommittedEvent[] = [];
    for (const { actor, entries } of this.groups.values()) {
      for (const e of entries) out.push({ type: actor.type, key: actor.key, id: e.id, seq: e.seq, event: e.event });
    }
    return out;
  }

  /** After a successful commit: remember which snapshots were written. */
  committed(commit: StepCommit): void {
    for (const a of commit.actors) {
      const g = this.groups.get(a.ref);
      if (g && a.snapshot) g.actor.snapshotSeq = a.snapshot.seq;
    }
  }
}
