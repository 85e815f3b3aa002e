import { InvalidOptionError } from '../persistence';

/** What happens to an event when restarts are exhausted. */
export type OnExhausted = 'dead-letter' | 'stop' | 'escalate';

/** Supervision policy of an actor type (OTP's restart intensity, Akka's backoff). */
export interface SupervisionOptions {
  /** Restarts allowed within `withinMs` before the final word. @default 3 */
  maxRestarts?: number;
  /** The window of the restart intensity (ms). @default 10000 */
  withinMs?: number;
  backoff?: {
    /** Backoff before the first restart (ms). @default 50 */
    initialMs?: number;
    /** Backoff ceiling (ms). @default 5000 */
    maxMs?: number;
    /** Random extra delay, as a fraction of the backoff. @default 0.2 */
    randomFactor?: number;
  };
  /** @default 'dead-letter' */
  onExhausted?: OnExhausted;
}

export interface RestartPolicy {
  maxRestarts: number;
  withinMs: number;
  backoff: { initialMs: number; maxMs: number; randomFactor: number };
  onExhausted: OnExhausted;
}

function nonNegativeInt(name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new InvalidOptionError(name, 'an integer >= 0', v);
  return v;
}

/** Resolve and validate a supervision policy once. */
export function resolveRestartPolicy(opts: SupervisionOptions | undefined, path = 'supervision'): RestartPolicy {
  const o = opts ?? {};
  const onExhausted = o.onExhausted ?? 'dead-letter';
  if (!['dead-letter', 'stop', 'escalate'].includes(onExhausted)) {
    throw new InvalidOptionError(`${path}.onExhausted`, "'dead-letter' | 'stop' | 'escalate'", onExhausted);
  }
  const initialMs = nonNegativeInt(`${path}.backoff.initialMs`, o.backoff?.initialMs, 50);
  const maxMs = nonNegativeInt(`${path}.backoff.maxMs`, o.backoff?.maxMs, 5_000);
  if (maxMs < initialMs) throw new InvalidOptionError(`${path}.backoff.maxMs`, `>= backoff.initialMs (${initialMs})`, maxMs);
  const randomFactor = o.backoff?.randomFactor ?? 0.2;
  if (typeof randomFactor !== 'number' || !(randomFactor >= 0 && randomFactor <= 1)) {
    throw new InvalidOptionError(`${path}.backoff.randomFactor`, 'a number from 0 to 1', randomFactor);
  }
  return {
    maxRestarts: nonNegativeInt(`${path}.maxRestarts`, o.maxRestarts, 3),
    withinMs: nonNegativeInt(`${path}.withinMs`, o.withinMs, 10_000),
    backoff: { initialMs, maxMs, randomFactor },
    onExhausted,
  };
}

/** Exponential backoff before restart number `restart` (1-based), with jitter. */
export function backoffMs(policy: RestartPolicy, restart: number, random: () => number = Math.random): number {
  const { initialMs, maxMs, randomFactor } = policy.backoff;
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, restart - 1));
  return Math.round(base * (1 + randomFactor * random()));
}

/**
 * Restart intensity of one actor: remembers the restarts of the last
 * `withinMs` and says whether one more is allowed.
 */
export class RestartIntensity {
  private readonly restarts: number[] = [];

  constructor(
    private readonly policy: RestartPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  /** Record a restart if allowed; false when the intensity is exceeded. */
  tryRestart(): boolean {
    const t = this.now();
    while (this.restarts.length > 0 && this.restarts[0]! <= t - this.policy.withinMs) this.restarts.shift();
    if (this.restarts.length >= this.policy.maxRestarts) return false;
    this.restarts.push(t);
    return true;
  }

  /** Restarts within the window now. */
  get count(): number {
    const t = this.now();
    while (this.restarts.length > 0 && this.restarts[0]! <= t - this.policy.withinMs) this.restarts.shift();
    return this.restarts.length;
  }
}
