import { KeyflowError } from '../persistence';

/** A value as an error message shows it: JSON where it can be, cut at `max` characters. */
export const showValue = (v: unknown, max = 80): string => {
  let s: string;
  try {
    s = typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  return s.length > max ? `${s.slice(0, max)}…` : s;
};

export class UnknownActorTypeError extends KeyflowError {
  constructor(
    readonly actorType: unknown,
    known: string[],
  ) {
    super('UNKNOWN_ACTOR_TYPE', `unknown actor type ${showValue(actorType)}: this system defines ${known.map((k) => `'${k}'`).join(', ') || 'no actor types'}. Pass its definition in createActorSystem({ actors })`);
  }
}

export class InvalidKeyError extends KeyflowError {
  constructor(
    readonly key: unknown,
    reason: string,
  ) {
    super('INVALID_KEY', `invalid actor key ${showValue(key)}: ${reason}`);
  }
}

export class InvalidEventError extends KeyflowError {
  constructor(reason: string) {
    super('INVALID_EVENT', `invalid event: ${reason}`);
  }
}

export class EventTooLargeError extends KeyflowError {
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super('EVENT_TOO_LARGE', `event is ${bytes} bytes as JSON, over the limit of ${limit} bytes (option maxEventBytes): send a reference to large data instead`);
  }
}

export class AskTimeoutError extends KeyflowError {
  constructor(
    readonly actorType: string,
    readonly key: string,
    readonly eventId: string,
    readonly timeoutMs: number,
  ) {
    super('ASK_TIMEOUT', `no commit of event ${eventId} for ${actorType} ${showValue(key)} within ${timeoutMs} ms: the event is enqueued and will still be applied; is a worker running (worker: true)?`);
  }
}

export class SystemClosedError extends KeyflowError {
  constructor() {
    super('SYSTEM_CLOSED', 'the actor system is closed: create a new one');
  }
}

export class NamespaceMismatchError extends KeyflowError {
  constructor(namespace: string, stored: number, requested: number) {
    super('NAMESPACE_MISMATCH', `namespace '${namespace}' was created with ${stored} partitions, this system asks for ${requested}: the partition count of a namespace never changes; use ${stored} or a new namespace`);
  }
}

/** Why a stored snapshot has no migration path to the current machine version. */
export type VersionMismatchReason = 'no-migrate' | 'newer' | 'migrate-failed';

/**
 * A snapshot written by another machine version cannot be brought to the
 * current one: no `migrate`, a snapshot of a newer version than the code, or
 * a `migrate` that threw (or whose result the machine cannot restore; then
 * `cause` is that error). In a worker, the key is stopped at once (its events
 * are held in dead letters until `system.resume(type, key)`); `get` rejects.
 */
export class VersionMismatchError extends KeyflowError {
  readonly reason: VersionMismatchReason;
  readonly key: string | undefined;

  constructor(
    readonly actorType: string,
    readonly storedVersion: number,
    readonly currentVersion: number,
    opts: { reason?: VersionMismatchReason; key?: string; cause?: unknown } = {},
  ) {
    const reason = opts.reason ?? 'no-migrate';
    const who = opts.key === undefined ? `a snapshot of '${actorType}'` : `the snapshot of ${actorType} ${showValue(opts.key)}`;
    const what =
      reason === 'newer'
        ? `was written by machine version ${storedVersion}, newer than this code's version ${currentVersion}: run the newer code (migrate only goes forward)`
        : reason === 'migrate-failed'
          ? `(machine version ${storedVersion}) could not be migrated to version ${currentVersion}: migrate(persisted, ${storedVersion}) failed: ${opts.cause instanceof Error ? opts.cause.message : String(opts.cause)}`
          : `was written by machine version ${storedVersion}, the current version is ${currentVersion} and defineActor has no migrate(persisted, fromVersion) for it`;
    super('VERSION_MISMATCH', `${who} ${what}. A worker stops such a key (its events are held in dead letters) until system.resume(type, key) after a fix is deployed`, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.reason = reason;
    this.key = opts.key;
  }
}

export class DeadLetterNotFoundError extends KeyflowError {
  constructor(id: string) {
    super('DEAD_LETTER_NOT_FOUND', `no dead letter with id ${showValue(id)}: it was retried or discarded already, or never existed`);
  }
}

export class EventDeadLetteredError extends KeyflowError {
  constructor(
    readonly actorType: string,
    readonly key: string,
    readonly eventId: string,
    readonly reason: string,
  ) {
    super('EVENT_DEAD_LETTERED', `event ${eventId} for ${actorType} ${showValue(key)} was not applied: supervision dead-lettered it (${reason}). See system.deadLetters()`);
  }
}

export class DrainTimeoutError extends KeyflowError {
  constructor(
    readonly pending: number,
    readonly timeoutMs: number,
  ) {
    super('DRAIN_TIMEOUT', `drain: ${pending} jobs or mail still pending after ${timeoutMs} ms: is a worker running (worker: true) for this namespace?`);
  }
}

/** An event for an actor that supervision stopped: held in dead letters until `system.resume(type, key)`. */
export class ActorStoppedError extends KeyflowError {
  constructor(
    readonly actorType: string,
    readonly key: string,
  ) {
    super('ACTOR_STOPPED', `actor ${actorType} ${showValue(key)} is stopped by supervision (onExhausted: 'stop'): its events are held in dead letters until system.resume('${actorType}', key)`);
  }
}

/** An actor's stored state could not be rebuilt (its machine failed on its own journal or snapshot). */
export class RehydrationError extends KeyflowError {
  constructor(actorType: string, key: string, cause: unknown) {
    super('REHYDRATION_FAILED', `actor ${actorType} ${showValue(key)} cannot be rebuilt from snapshot + journal: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
