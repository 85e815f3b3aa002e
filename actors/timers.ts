import type { JsonObject } from '../persistence';

/**
 * Durable timers: XState's delayed events (`after`, delayed `raise`, delayed
 * `sendTo` to self) kept as data. A step's actions schedule and cancel them;
 * the table of pending timers is part of the actor's state (snapshotted with
 * it, rebuilt by replay), and a firing is delivered as a journaled event only
 * if its timer is still pending with the same token: a timer cancelled or
 * re-armed meanwhile is dropped.
 */

/** A pending timer. `token` = the seq of the step that armed it (unique per arming). */
export interface PendingTimer {
  token: number;
  /** Event time of the firing: the arming event's ts + the delay. */
  ts: number;
  event: JsonObject;
}

export type TimerTable = Record<string, PendingTimer>;

/** What a step asked of its timers, in action order. */
export type TimerOp = { op: 'schedule'; id: string; delayMs: number; event: JsonObject } | { op: 'cancel'; id: string };

/** The part of an executed XState action that timers look at. */
export interface TimerAction {
  type: string;
  params?: unknown;
}

/**
 * The timer changes in a step's actions. `self` is the actor scope's own ref:
 * a delayed `sendTo` to it is a timer; to anyone else it is not supported.
 */
export function timerOps(actions: readonly TimerAction[], self: unknown): TimerOp[] {
  const ops: TimerOp[] = [];
  actions.forEach((a, n) => {
    // Most actions of a step are neither (assign, emit): no look at their params.
    if (a.type !== 'xstate.raise' && a.type !== 'xstate.sendTo' && a.type !== 'xstate.cancel') return;
    const p = (a.params ?? {}) as { event?: JsonObject; id?: string; delay?: unknown; to?: unknown; sendId?: string };
    if ((a.type === 'xstate.raise' || (a.type === 'xstate.sendTo' && p.to === self)) && typeof p.delay === 'number' && p.event) {
      ops.push({ op: 'schedule', id: p.id ?? `@anonymous/${n}/${String(p.event.type)}`, delayMs: Math.max(0, p.delay), event: JSON.parse(JSON.stringify(p.event)) as JsonObject });
    } else if (a.type === 'xstate.cancel' && typeof p.sendId === 'string') {
      ops.push({ op: 'cancel', id: p.sendId });
    }
  });
  return ops;
}

/**
 * Apply a step's timer operations, in order, to a copy of the table. `seq`
 * and `ts` are the step's event: they make the token and the firing time.
 */
export function applyTimerOps(table: TimerTable, ops: readonly TimerOp[], seq: number, ts: number): TimerTable {
  const next: TimerTable = { ...table };
  for (const o of ops) {
    if (o.op === 'cancel') delete next[o.id];
    else next[o.id] = { token: seq, ts: ts + o.delayMs, event: o.event };
  }
  return next;
}

/** The id of the event a timer firing becomes (deterministic: de-duplicated like any event). */
export function timerEventId(timerId: string, token: number): string {
  return `@timer/${token}/${timerId}`;
}
