import { enqueueActions, setup, type EventObject } from 'xstate';
import { InvalidOptionError } from '../../persistence';
import { TerminalActorError } from '../../supervisors';
import { InvalidWindowItemError } from './errors';
import type { AggregateSpec } from './aggregates';
import { windowOperator, type WindowLate, type WindowResult, type WindowState } from './operator';
import { positiveInteger } from './window-spec';
import type { WindowSpec } from './window-spec';

/** An event as a keyflow machine sees it: the sent object plus its event time `ts` and `id`. */
export type WindowedEvent = EventObject & { ts: number; id?: string };

export interface WindowedAggregateOptions<E extends WindowedEvent = WindowedEvent, A = unknown, R = number> {
  window: WindowSpec;
  /** How long after a time window's end it still accepts late events (ms, event time). @default 0 */
  graceMs?: number;
  /** The number each event contributes. Optional for `aggregate: 'count'` only. */
  value?: (event: E) => number;
  aggregate: AggregateSpec<A, R>;
  /**
   * Close the open windows after this long without an event for the key (ms):
   * a durable timer re-armed by every event. Its firing carries event time
   * `ts` of the last event + idleCloseMs. @default undefined (windows close by watermark only)
   */
  idleCloseMs?: number;
}

const OPTION_KEYS = new Set(['window', 'graceMs', 'value', 'aggregate', 'idleCloseMs']);

/**
 * A ready-made machine (usable directly as an actor type's machine) that
 * aggregates every event of its key in event-time or count windows and
 * emits `{ type: 'window.result', start, end, count, value }` once per
 * closed window and `{ type: 'window.late', event }` for a late event. Its
 * context is the window operator's state (watermark, open windows).
 *
 * An event whose `ts` or value is not a finite number is dead-lettered at
 * once (a TerminalActorError caused by an InvalidWindowItemError).
 */
export function windowedAggregate<E extends WindowedEvent = WindowedEvent, A = unknown, R = number>(opts: WindowedAggregateOptions<E, A, R>) {
  if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('windowedAggregate(options)', 'an object { window, graceMs?, value, aggregate, idleCloseMs? }', opts);
  for (const k of Object.keys(opts)) {
    if (!OPTION_KEYS.has(k)) throw new InvalidOptionError(k, `no such option of windowedAggregate (known: ${[...OPTION_KEYS].join(', ')})`, (opts as unknown as Record<string, unknown>)[k]);
  }
  const op = windowOperator<A, R>({ window: opts.window, graceMs: opts.graceMs, aggregate: opts.aggregate });
  if (opts.value !== undefined && typeof opts.value !== 'function') throw new InvalidOptionError('value', 'a function (event) => number', typeof opts.value);
  if (opts.value === undefined && opts.aggregate !== 'count') {
    throw new InvalidOptionError('value', `a function (event) => number (only aggregate 'count' may leave it out)`, undefined);
  }
  const value = opts.value ?? (() => 1);
  const idleCloseMs = opts.idleCloseMs === undefined ? undefined : positiveInteger('idleCloseMs', opts.idleCloseMs);

  /**
   * Run an operator step. A bad item is terminal by its class (InvalidWindowItemError is a
   * TerminalActorError); this machine reports it as the documented TerminalActorError caused by it.
   */
  const guarded = <T>(f: () => T): T => {
    try {
      return f();
    } catch (err) {
      if (err instanceof InvalidWindowItemError) throw new TerminalActorError(err.message, { cause: err });
      throw err;
    }
  };

  return setup({
    types: {
      context: {} as WindowState,
      events: {} as E,
      input: {} as { key: string },
      emitted: {} as WindowResult<R> | WindowLate<E>,
    },
    actions: {
      add: enqueueActions(({ context, event, enqueue }) => {
        const e = event as E;
        const step = guarded(() => op.add(context, { ts: e.ts, value: value(e), item: e }));
        enqueue.assign(step.state);
        for (const r of step.results) enqueue.emit(r);
        if (step.late) enqueue.emit({ type: 'window.late', event: e });
      }),
      flush: enqueueActions(({ context, enqueue }) => {
        const step = op.flush(context);
        enqueue.assign(step.state);
        for (const r of step.results) enqueue.emit(r);
      }),
    },
  }).createMachine({
    id: 'windowedAggregate',
    context: () => op.init(),
    initial: 'open',
    states: {
      open: {
        // Re-entering the state re-arms the idle timer (its `after` is cancelled and scheduled again).
        on: { '*': idleCloseMs === undefined ? { actions: 'add' } : { target: 'open', reenter: true, actions: 'add' } },
        ...(idleCloseMs === undefined ? {} : { after: { [idleCloseMs]: { actions: 'flush' } } }),
      },
    },
  });
}

