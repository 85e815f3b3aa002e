import { EventEmitter } from 'node:events';

/** Where an error happened. */
export interface ErrorContext {
  partition?: number;
}

export interface SupervisionEvent {
  /** Actor type and key. */
  type: string;
  key: string;
  /** The event that failed. */
  eventId: string;
  /** The actor's seq (events applied) when it failed; 0 when unknown. */
  seq: number;
  error: Error;
  /** Attempts at this event so far. */
  attempts: number;
}

/** An event applied by a committed step (see SystemListener.committed). */
export interface CommittedEvent {
  /** Actor type and key. */
  type: string;
  key: string;
  /** The event's id, and its seq in the actor's journal. */
  id: string;
  seq: number;
  /**
   * The event as the machine saw it: as sent, with its `id` and `ts`. The
   * machine's own object (no copy), which its context may hold: read it only,
   * or the live actor no longer equals the replay of its journal.
   */
  readonly event: { readonly [k: string]: unknown };
}

/** The events of an actor system, one documented member each. */
export interface SystemListener {
  /** A worker-level error it recovers from by itself (Redis unreachable, a malformed job); never thrown. */
  error: (error: Error, context: ErrorContext) => void;
  /** This worker took a partition's lease. */
  leaseAcquired: (info: { partition: number; epoch: number }) => void;
  /** This worker lost a partition's lease (expired, taken over): it stopped committing for it. */
  leaseLost: (info: { partition: number; epoch: number; reason: string }) => void;
  /** A failed step: the actor was rebuilt from snapshot + journal and the event is retried. */
  restarted: (info: SupervisionEvent) => void;
  /** Supervision gave up on an event: it went to the dead letters. */
  deadLettered: (info: SupervisionEvent) => void;
  /** Supervision stopped an actor ('stop'): its events wait in dead letters until `system.resume(type, key)`. */
  stopped: (info: SupervisionEvent) => void;
  /** Supervision escalated ('escalate'): the partition is paused until `system.resumePartition(partition)`. */
  escalated: (info: SupervisionEvent & { partition: number }) => void;
  /** A restarted actor applied the event that had failed. */
  recovered: (info: SupervisionEvent) => void;
  /**
   * This worker committed a step of a partition: these events are journaled and
   * their effects written, atomically (the commit script returned). Emitted once
   * per commit that applied events, in commit order within the partition;
   * events that went to the dead letters are not listed. Built only while
   * someone listens.
   */
  committed: (info: { partition: number; events: readonly CommittedEvent[] }) => void;
}

/** A typed EventEmitter over SystemListener. */
export class SystemEvents extends EventEmitter {
  override on<E extends keyof SystemListener>(event: E, listener: SystemListener[E]): this {
    return super.on(event, listener);
  }

  override once<E extends keyof SystemListener>(event: E, listener: SystemListener[E]): this {
    return super.once(event, listener);
  }

  override off<E extends keyof SystemListener>(event: E, listener: SystemListener[E]): this {
    return super.off(event, listener);
  }

  private lastUnheard = new Map<string, number>();

  override emit<E extends keyof SystemListener>(event: E, ...args: Parameters<SystemListener[E]>): boolean {
    // An 'error' with no listener must not crash the process (workers recover by themselves),
    // nor vanish: it goes to stderr, each distinct message at most every 10 s.
    if (event === 'error' && this.listenerCount('error') === 0) {
      const err = args[0] as Error;
      const now = Date.now();
      if ((this.lastUnheard.get(err.message) ?? 0) < now - 10_000) {
        if (this.lastUnheard.size > 1_000) this.lastUnheard.clear();
        this.lastUnheard.set(err.message, now);
        process.stderr.write(`[keyflow] ${err.name}: ${err.message} (listen to system.events 'error' to handle these)\n`);
      }
      return false;
    }
    return super.emit(event, ...args);
  }
}
