import { backoffMs, RestartIntensity, type RestartPolicy } from './restart-policy';

/**
 * How bad a failure is, as the code that met it can tell:
 * - `restartable`: a throwing step, or state that failed to load: a restart may help;
 * - `terminal`: this event can never succeed (TerminalActorError, a bad mail target):
 *   it is dead-lettered at once, the key goes on;
 * - `key-fatal`: the key's stored state cannot be used by this code (a snapshot with no
 *   migration path): the key is stopped at once, its events held until resumed.
 */
export type FailureSeverity = 'restartable' | 'terminal' | 'key-fatal';

/** What the supervisor decides for a failed step. */
export type Directive =
  /** Rebuild the actor from snapshot + journal and retry the event after `delayMs`. */
  | { kind: 'restart'; delayMs: number; restarts: number }
  /** Give the event up (dead letters); the key goes on with its next event. */
  | { kind: 'dead-letter'; restarts: number }
  /** Give the event up and stop the key: its later events are held in dead letters until resumed. */
  | { kind: 'stop'; restarts: number }
  /** Pause the whole partition and report it. */
  | { kind: 'escalate'; restarts: number };

/**
 * The supervisor of the actors of one partition: per key, restart intensity
 * (at most `maxRestarts` within `withinMs`) with exponential backoff; past it,
 * the policy's final word. A terminal or key-fatal failure skips the restarts
 * (and the policy: see FailureSeverity).
 */
export class KeySupervisor {
  private readonly intensity = new Map<string, RestartIntensity>();

  constructor(private readonly now: () => number = Date.now) {}

  onFailure(ref: string, policy: RestartPolicy, severity: FailureSeverity): Directive {
    let intensity = this.intensity.get(ref);
    if (!intensity) {
      intensity = new RestartIntensity(policy, this.now);
      this.intensity.set(ref, intensity);
    }
    if (severity === 'terminal') return { kind: 'dead-letter', restarts: intensity.count };
    if (severity === 'key-fatal') return { kind: 'stop', restarts: intensity.count };
    if (intensity.tryRestart()) return { kind: 'restart', delayMs: backoffMs(policy, intensity.count), restarts: intensity.count };
    const restarts = intensity.count;
    this.intensity.delete(ref);
    return { kind: policy.onExhausted, restarts };
  }

  /** Forget a key's restarts (it recovered and its window passed, or the partition was resumed). */
  reset(ref?: string): void {
    if (ref === undefined) this.intensity.clear();
    else this.intensity.delete(ref);
  }

  /** Drop intensity records with no restart left in their window. */
  prune(): void {
    for (const [ref, i] of this.intensity) if (i.count === 0) this.intensity.delete(ref);
  }
}
