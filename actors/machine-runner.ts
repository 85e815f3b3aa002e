import { createActor, type AnyMachineSnapshot, type AnyStateMachine } from 'xstate';
import { toError, type JournalEntry, type JsonObject, type LoadedActor } from '../persistence';
import { TerminalActorError, type FailureSeverity } from '../supervisors';
import type { ActorDefinition } from './define-actor';
import { VersionMismatchError } from './errors';
import { MAIL_EVENT_TYPE, type MailEvent } from './send-to-actor';
import { applyTimerOps, timerOps, type TimerOp, type TimerTable } from './timers';

/** What a step produced besides the next snapshot. */
export interface StepEffects {
  /** `emit(...)` events: the outputs, as JSON text (serialized once, when emitted). */
  outputs: string[];
  /** `sendToActor(...)` mail. */
  mail: { to: { type: string; key: string }; event: JsonObject }[];
  /** Durable timers armed and cancelled (delayed raise / sendTo to self, `after`). */
  timers: TimerOp[];
}

/** An actor's state as replay rebuilds it: the machine snapshot and its pending timers. */
export interface ReplayedState {
  snapshot: AnyMachineSnapshot;
  timers: TimerTable;
  /** Set when the stored snapshot was of an older machine version and `migrate` brought it to this one. */
  migratedFrom?: number;
}

export type StepOutcome =
  | { ok: true; snapshot: AnyMachineSnapshot; effects: StepEffects }
  | { ok: false; error: Error; severity: FailureSeverity };

interface ExecutableAction {
  type: string;
  params?: unknown;
  info?: unknown;
  exec?: ((info: unknown, params: unknown) => void) | undefined;
}

/**
 * Runs one actor type's machine as a pure function: XState's transition API
 * with an inert actor scope built once per machine (building one per call,
 * as `transition()` does, costs 5x). Actions come back as data: emits become
 * outputs or mail, custom actions run only on live steps, never on replay.
 */
export class MachineRunner {
  private readonly machine: AnyStateMachine;
  private readonly scope: Record<string, unknown> & { actionExecutor: (a: ExecutableAction) => void };
  private collected: ExecutableAction[] = [];

  constructor(readonly def: ActorDefinition) {
    this.machine = def.machine;
    const self = createActor(this.machine, { input: { key: '' } });
    this.scope = {
      self,
      defer: () => {},
      id: '',
      logger: () => {},
      sessionId: '',
      stopChild: () => {},
      system: (self as unknown as { system: unknown }).system,
      emit: () => {},
      actionExecutor: (a: ExecutableAction) => {
        this.collected.push(a);
      },
    };
  }

  /** The state of a key that has seen no event. */
  initial(key: string): { snapshot: AnyMachineSnapshot; actions: ExecutableAction[] } {
    this.collected = [];
    const snapshot = this.machine.getInitialSnapshot(this.scope as never, { key }) as AnyMachineSnapshot;
    return { snapshot, actions: this.take() };
  }

  /**
   * Restore a persisted snapshot, migrating it from an older machine version.
   * A snapshot with no migration path throws VersionMismatchError: no
   * `migrate`, a newer version than this machine's, or a `migrate` that throws,
   * returns no object, or returns what the machine cannot restore. A snapshot
   * of the current version the machine cannot restore throws the machine's error.
   */
  restore(state: JsonObject, version: number, key?: string): AnyMachineSnapshot {
    const { type, version: current, migrate } = this.def;
    if (version === current) return this.restoreCurrent(state);
    if (version > current) throw new VersionMismatchError(type, version, current, { reason: 'newer', key });
    if (!migrate) throw new VersionMismatchError(type, version, current, { reason: 'no-migrate', key });
    try {
      const migrated = migrate(structuredClone(state), version);
      if (typeof migrated !== 'object' || migrated === null || Array.isArray(migrated)) {
        throw new TypeError(`it returned ${Array.isArray(migrated) ? 'an array' : String(migrated)}, not a persisted snapshot object`);
      }
      return this.restoreCurrent(migrated);
    } catch (err) {
      throw new VersionMismatchError(type, version, current, { reason: 'migrate-failed', key, cause: err });
    }
  }

  private restoreCurrent(persisted: JsonObject): AnyMachineSnapshot {
    const snapshot = this.machine.restoreSnapshot(persisted as never, this.scope as never) as AnyMachineSnapshot;
    if (snapshot.status === 'error') throw toError(snapshot.error ?? new Error('restored snapshot is in status error'));
    return snapshot;
  }

  /** The persisted (JSON) form of a snapshot. */
  persist(snapshot: AnyMachineSnapshot): JsonObject {
    return JSON.parse(JSON.stringify(this.machine.getPersistedSnapshot(snapshot))) as JsonObject;
  }

  /**
   * Rebuild a key's state from what rehydration loaded: the snapshot (or the
   * initial state) and the journal entries after it, with the timers they
   * armed. No action runs, no output is produced. Throws if the machine fails
   * on its own journal.
   */
  rehydrate(key: string, loaded: LoadedActor): ReplayedState {
    let state: ReplayedState;
    let initialActions: ExecutableAction[] = [];
    if (loaded.snapshot) {
      const { state: persisted, version, timers } = loaded.snapshot;
      state = { snapshot: this.restore(persisted, version, key), timers: (timers ?? {}) as TimerTable };
    } else {
      const init = this.initial(key);
      state = { snapshot: init.snapshot, timers: {} };
      initialActions = init.actions;
    }
    for (const entry of loaded.tail) {
      state = this.replayOne(state, entry, initialActions);
      initialActions = [];
    }
    if (loaded.snapshot && loaded.snapshot.version !== this.def.version) state.migratedFrom = loaded.snapshot.version;
    return state;
  }

  /** Re-apply one journal entry. `initialActions`: those of the initial transition, owed to the first entry. */
  replayOne(state: ReplayedState, entry: JournalEntry, initialActions: ExecutableAction[] = []): ReplayedState {
    this.collected = [];
    const next = this.machine.transition(state.snapshot, entry.event, this.scope as never) as AnyMachineSnapshot;
    const actions = initialActions.length === 0 ? this.take() : [...initialActions, ...this.take()];
    if (next.status === 'error') throw toError(next.error);
    let timers = state.timers;
    if (entry.timer !== undefined && timers[entry.timer]) {
      timers = { ...timers };
      delete timers[entry.timer];
    }
    const ops = timerOps(actions, this.scope.self);
    if (ops.length > 0) timers = applyTimerOps(timers, ops, entry.seq, entry.ts);
    return { snapshot: next, timers };
  }

  /**
   * Apply one live event. `fresh` = the key has no state yet: the initial
   * transition's actions belong to this step. Never throws.
   */
  step(snapshot: AnyMachineSnapshot, event: JsonObject, initialActions: ExecutableAction[] = []): StepOutcome {
    try {
      this.collected = [];
      const next = this.machine.transition(snapshot, event, this.scope as never) as AnyMachineSnapshot;
      const actions = initialActions.length === 0 ? this.take() : [...initialActions, ...this.take()];
      if (next.status === 'error') return this.failure(next.error);
      const effects: StepEffects = { outputs: [], mail: [], timers: timerOps(actions, this.scope.self) };
      for (const a of actions) {
        if (a.type === 'xstate.emit') {
          const emitted = (a.params as { event: JsonObject }).event;
          if (emitted.type === MAIL_EVENT_TYPE) {
            const m = emitted as unknown as MailEvent;
            effects.mail.push({ to: m.to, event: m.event });
          } else {
            effects.outputs.push(JSON.stringify(emitted));
          }
        } else if (!a.type.startsWith('xstate.') && typeof a.exec === 'function') {
          a.exec(a.info, a.params);
        }
      }
      return { ok: true, snapshot: next, effects };
    } catch (err) {
      return this.failure(err);
    } finally {
      this.collected = [];
    }
  }

  private failure(thrown: unknown): StepOutcome {
    const error = toError(thrown);
    const cause = (error as { cause?: unknown }).cause;
    const terminal = error instanceof TerminalActorError || cause instanceof TerminalActorError;
    return { ok: false, error, severity: terminal ? 'terminal' : 'restartable' };
  }

  private take(): ExecutableAction[] {
    const out = this.collected;
    this.collected = [];
    return out;
  }
}

export type { ExecutableAction };
