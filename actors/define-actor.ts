import type { AnyStateMachine } from 'xstate';
import { InvalidOptionError, type JsonObject } from '../persistence';
import { resolveRestartPolicy, type RestartPolicy, type SupervisionOptions } from '../supervisors';

export const ACTOR_TYPE_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;

/** How an actor type is defined. The machine's input is `{ key }`. */
export interface ActorOptions<TMachine extends AnyStateMachine = AnyStateMachine> {
  /** Actor type: `[a-z][a-z0-9_-]*`, at most 64 characters. */
  type: string;
  /** Any XState v5 machine. It must be deterministic: read time from `event.ts`, never from `Date.now()`. */
  machine: TMachine;
  /** Events between snapshots. @default 100 */
  snapshotEvery?: number;
  supervision?: SupervisionOptions;
  /** Passivate (drop from memory) after this long without events (ms). @default 60000 */
  idleAfterMs?: number;
  /** Delete the key's state after this much inactivity (ms). @default undefined (keep) */
  ttlMs?: number;
  /** Machine version; bump it when the machine changes. @default 1 */
  version?: number;
  /** Turn a persisted snapshot of an older version into one of the current version. */
  migrate?: (persisted: JsonObject, fromVersion: number) => JsonObject;
}

/** A resolved, validated actor definition. */
export interface ActorDefinition<TMachine extends AnyStateMachine = AnyStateMachine> {
  readonly type: string;
  readonly machine: TMachine;
  readonly snapshotEvery: number;
  readonly supervision: RestartPolicy;
  readonly idleAfterMs: number;
  readonly ttlMs: number | undefined;
  readonly version: number;
  readonly migrate: ((persisted: JsonObject, fromVersion: number) => JsonObject) | undefined;
}

function positiveInt(name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new InvalidOptionError(name, 'an integer >= 1', v);
  return v;
}

/** Define an actor type. Validates every option, naming the one that is wrong. */
export function defineActor<TMachine extends AnyStateMachine>(opts: ActorOptions<TMachine>): ActorDefinition<TMachine> {
  if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('defineActor(options)', 'an object', opts);
  if (typeof opts.type !== 'string' || !ACTOR_TYPE_PATTERN.test(opts.type)) {
    throw new InvalidOptionError('type', 'a string matching [a-z][a-z0-9_-]* (at most 64 characters)', opts.type);
  }
  const m = opts.machine as unknown as { transition?: unknown; getPersistedSnapshot?: unknown } | undefined;
  if (!m || typeof m.transition !== 'function' || typeof m.getPersistedSnapshot !== 'function') {
    throw new InvalidOptionError(`machine (of '${opts.type}')`, 'an XState v5 machine (createMachine / setup().createMachine)', typeof opts.machine);
  }
  if (opts.ttlMs !== undefined) positiveInt(`ttlMs (of '${opts.type}')`, opts.ttlMs, 1);
  if (opts.migrate !== undefined && typeof opts.migrate !== 'function') {
    throw new InvalidOptionError(`migrate (of '${opts.type}')`, 'a function (persisted, fromVersion) => persisted', typeof opts.migrate);
  }
  return Object.freeze({
    type: opts.type,
    machine: opts.machine,
    snapshotEvery: positiveInt(`snapshotEvery (of '${opts.type}')`, opts.snapshotEvery, 100),
    supervision: resolveRestartPolicy(opts.supervision, `supervision (of '${opts.type}')`),
    idleAfterMs: positiveInt(`idleAfterMs (of '${opts.type}')`, opts.idleAfterMs, 60_000),
    ttlMs: opts.ttlMs,
    version: positiveInt(`version (of '${opts.type}')`, opts.version, 1),
    migrate: opts.migrate,
  });
}
