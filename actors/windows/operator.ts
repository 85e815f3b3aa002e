import { InvalidOptionError } from '../../persistence';
import { InvalidWindowItemError } from './errors';
import { resolveAggregate, type AggregateSpec } from './aggregates';
import { resolveGrace, resolveWindow, type ResolvedWindow, type WindowSpec } from './window-spec';

/** A window still open: its bounds, how many items it counted, and the aggregate's accumulator. */
export interface OpenWindow {
  start: number;
  end: number;
  count: number;
  acc: unknown;
}

/** A sliding window's item kept while a window that may still open could contain it. */
export interface RetainedItem {
  ts: number;
  value: number;
  /** Kept for custom aggregates only (their `add` sees it). */
  item?: unknown;
}

/**
 * A window operator's state: JSON data, meant to live in a machine's
 * context (and so in snapshots). Treat it as opaque; the fields are
 * documented for reading it in `system.get`.
 */
export interface WindowState {
  /** Largest event time seen (or given to `advance`); `null` before the first item. */
  watermark: number | null;
  /** Close frontier: every window with `end <= closedTo` is closed (time windows; `null`: none yet). */
  closedTo: number | null;
  /** Open windows, ordered by end, then start. */
  windows: OpenWindow[];
  /** Session windows: end of the last closed session; an item at or before it would rejoin it, so it is late. */
  sessionEnd?: number | null;
  /** Sliding windows: items that a window opened later could still contain, in arrival order. */
  items?: RetainedItem[];
  /** Count windows: ordinal of the next item. */
  next?: number;
  /** Count windows: ordinal where windows are aligned (0, or where a flush left off). */
  origin?: number;
}

/** A closed (or, from `open()`, a still open) window's aggregate. */
export interface WindowResult<R = number> {
  type: 'window.result';
  start: number;
  end: number;
  count: number;
  value: R;
}

/** An event that arrived after all its windows had closed: not counted. */
export interface WindowLate<E = unknown> {
  type: 'window.late';
  event: E;
}

/** One item: its event time, the number to aggregate, and (for custom aggregates) the item itself. */
export interface WindowItem {
  ts: number;
  value: number;
  item?: unknown;
}

export interface WindowOperatorOptions<A = unknown, R = number> {
  window: WindowSpec;
  /** How long after a time window's end it still accepts late items (ms, event time). Time windows only. @default 0 */
  graceMs?: number;
  aggregate: AggregateSpec<A, R>;
}

export interface WindowStep<R = number> {
  state: WindowState;
  /** Windows closed by this step, ordered by end, then start. */
  results: WindowResult<R>[];
}

export interface WindowOperator<R = number> {
  readonly window: ResolvedWindow;
  readonly graceMs: number;
  /** The state before the first item. */
  init(): WindowState;
  /** Count one item (pure: `state` is not modified). `late`: all its windows were closed; it was not counted. */
  add(state: WindowState, item: WindowItem): WindowStep<R> & { late: boolean };
  /** Move the watermark forward (never back) and close the windows it passes. */
  advance(state: WindowState, watermark: number): WindowStep<R>;
  /** Close every open window now (idle close, end of input); count windows emit what they hold. */
  flush(state: WindowState): WindowStep<R>;
  /** The current aggregates of the open windows (early firing), ordered by end, then start. */
  open(state: WindowState): WindowResult<R>[];
  /** The watermark: -Infinity before the first item. */
  watermark(state: WindowState): number;
}

const OPTION_KEYS = new Set(['window', 'graceMs', 'aggregate']);
const orMinus = (v: number | null | undefined): number => v ?? -Infinity;
const orNull = (v: number): number | null => (Number.isFinite(v) ? v : null);
const byEnd = (a: OpenWindow, b: OpenWindow): number => a.end - b.end || a.start - b.start;

function finite(field: 'ts' | 'value' | 'watermark', v: unknown, hint: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new InvalidWindowItemError(field, v, hint);
  return v;
}

function checkState(state: unknown): WindowState {
  if (typeof state !== 'object' || state === null || !Array.isArray((state as WindowState).windows)) {
    throw new InvalidOptionError('state', 'a WindowState (from op.init() or a previous step)', state);
  }
  return state as WindowState;
}

/**
 * A pure event-time (or count) window operator. Keep its state in a
 * machine's context; see docs/windows.md for the exact semantics.
 */
export function windowOperator<A = unknown, R = number>(opts: WindowOperatorOptions<A, R>): WindowOperator<R> {
  if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('windowOperator(options)', 'an object { window, graceMs?, aggregate }', opts);
  for (const k of Object.keys(opts)) {
    if (!OPTION_KEYS.has(k)) throw new InvalidOptionError(k, `no such option of windowOperator (known: ${[...OPTION_KEYS].join(', ')})`, (opts as unknown as Record<string, unknown>)[k]);
  }
  const window = resolveWindow(opts.window);
  const grace = resolveGrace(opts.graceMs, window);
  const agg = resolveAggregate(opts.aggregate, window.type === 'session');

  const toResult = (w: OpenWindow, end = w.end): WindowResult<R> => ({ type: 'window.result', start: w.start, end, count: w.count, value: agg.result(w.acc) as R });
  const added = (w: OpenWindow, x: WindowItem): OpenWindow => ({ ...w, count: w.count + 1, acc: agg.add(w.acc, x.value, x.item) });
  const opened = (start: number, end: number, x: WindowItem): OpenWindow => ({ start, end, count: 1, acc: agg.add(agg.init(), x.value, x.item) });

  /** Close the windows ending at or before `frontier`; the frontier never moves back. */
  function close(s: WindowState, frontier: number): WindowStep<R> {
    const closedTo = Math.max(orMinus(s.closedTo), frontier);
    const closing = s.windows.filter((w) => w.end <= closedTo);
    const next: WindowState = { ...s, closedTo: orNull(closedTo), windows: closing.length > 0 ? s.windows.filter((w) => w.end > closedTo) : s.windows };
    if (window.type === 'session' && closing.length > 0) next.sessionEnd = Math.max(orMinus(s.sessionEnd), ...closing.map((w) => w.end));
    if (window.type === 'sliding') {
      const keepAfter = closedTo - window.size;
      const items = s.items ?? [];
      if (items.some((i) => i.ts <= keepAfter)) next.items = items.filter((i) => i.ts > keepAfter);
    }
    return { state: next, results: closing.map((w) => toResult(w)) };
  }

  /** The windows after counting `x`, or null when all its windows are closed (late). */
  function join(s: WindowState, x: WindowItem, closedTo: number): Pick<WindowState, 'windows' | 'items'> | null {
    const { ts } = x;
    switch (window.type) {
      case 'aligned': {
        const ws = s.windows.slice();
        // Index of each open window by start, built once: an item may be in up to MAX_WINDOWS_PER_ITEM windows.
        const at = new Map(ws.map((w, i) => [w.start, i]));
        let counted = false;
        // Windows [k·hop, k·hop + size) containing ts, latest first; earlier ones end earlier.
        for (let start = Math.floor(ts / window.hop) * window.hop; start > ts - window.size; start -= window.hop) {
          const end = start + window.size;
          if (end <= closedTo) break;
          const i = at.get(start);
          if (i === undefined) ws.push(opened(start, end, x));
          else ws[i] = added(ws[i]!, x);
          counted = true;
        }
        return counted ? { windows: ws.sort(byEnd) } : null;
      }
      case 'sliding': {
        // Every open window containing ts counts it; its own window [ts + 1 - size, ts + 1) opens unless closed.
        let counted = false;
        const ws = s.windows.map((w) => (w.start <= ts && ts < w.end ? ((counted = true), added(w, x)) : w));
        const end = ts + 1;
        const start = end - window.size;
        const items = s.items ?? [];
        if (end > closedTo && !s.windows.some((w) => w.end === end)) {
          let acc = agg.init();
          let count = 1;
          for (const it of items) {
            if (it.ts >= start && it.ts < end) {
              acc = agg.add(acc, it.value, it.item);
              count++;
            }
          }
          ws.push({ start, end, count, acc: agg.add(acc, x.value, x.item) });
          ws.sort(byEnd);
          counted = true;
        }
        if (!counted) return null;
        return { windows: ws, items: [...items, agg.custom && x.item !== undefined ? { ts, value: x.value, item: x.item } : { ts, value: x.value }] };
      }
      case 'session': {
        if (ts <= orMinus(s.sessionEnd)) return null;
        const end = ts + window.gap;
        const touching = s.windows.filter((w) => w.start <= end && ts <= w.end);
        if (touching.length === 0) {
          if (end <= closedTo) return null;
          return { windows: [...s.windows, opened(ts, end, x)].sort(byEnd) };
        }
        // Open sessions are disjoint: ordered by end, they are ordered by start too.
        let acc = touching[0]!.acc;
        for (const w of touching.slice(1)) acc = agg.merge!(acc, w.acc);
        const merged = added(
          { start: Math.min(ts, touching[0]!.start), end: Math.max(end, touching[touching.length - 1]!.end), count: touching.reduce((n, w) => n + w.count, 0), acc },
          x,
        );
        return { windows: [...s.windows.filter((w) => !touching.includes(w)), merged].sort(byEnd) };
      }
      default:
        throw new Error('unreachable');
    }
  }

  function addCount(s: WindowState, x: WindowItem, watermark: number): WindowStep<R> & { late: boolean } {
    if (window.type !== 'count') throw new Error('unreachable');
    const n = s.next ?? 0;
    const origin = s.origin ?? 0;
    const ws = s.windows.map((w) => added(w, x));
    if ((n - origin) % window.hop === 0) ws.push(opened(n, n + window.size, x));
    const full = ws.filter((w) => w.count === w.end - w.start);
    const state: WindowState = { ...s, watermark, windows: full.length > 0 ? ws.filter((w) => w.count < w.end - w.start) : ws, next: n + 1, origin };
    return { state, results: full.map((w) => toResult(w)), late: false };
  }

  return {
    window,
    graceMs: grace,
    init() {
      const s: WindowState = { watermark: null, closedTo: null, windows: [] };
      if (window.type === 'sliding') s.items = [];
      if (window.type === 'session') s.sessionEnd = null;
      if (window.type === 'count') Object.assign(s, { next: 0, origin: 0 });
      return s;
    },
    add(state, item) {
      const s = checkState(state);
      if (typeof item !== 'object' || item === null) throw new InvalidWindowItemError('ts', item, 'add(state, { ts, value, item? }) takes an object');
      const x: WindowItem = {
        ts: finite('ts', item.ts, 'the event time in ms'),
        value: finite('value', item.value, 'the number to aggregate (what value(event) returned)'),
        item: item.item,
      };
      const watermark = Math.max(orMinus(s.watermark), x.ts);
      if (window.type === 'count') return addCount(s, x, watermark);
      // The item joins the windows open when it arrives; then the watermark moves and due windows close.
      const joined = join(s, x, orMinus(s.closedTo));
      const moved: WindowState = { ...s, ...(joined ?? {}), watermark };
      return { ...close(moved, watermark - grace), late: joined === null };
    },
    advance(state, watermark) {
      const s = checkState(state);
      const wm = Math.max(orMinus(s.watermark), finite('watermark', watermark, 'advance(state, watermark) takes an event time in ms'));
      const moved: WindowState = { ...s, watermark: orNull(wm) };
      return window.type === 'count' ? { state: moved, results: [] } : close(moved, wm - grace);
    },
    flush(state) {
      const s = checkState(state);
      if (s.windows.length === 0) return { state: s, results: [] };
      if (window.type === 'count') {
        // Partial count windows end at the ordinal after their last item; alignment restarts at the next item.
        return { state: { ...s, windows: [], origin: s.next ?? 0 }, results: s.windows.map((w) => toResult(w, w.start + w.count)) };
      }
      return close(s, Math.max(...s.windows.map((w) => w.end)));
    },
    open(state) {
      return checkState(state).windows.map((w) => toResult(w));
    },
    watermark(state) {
      return orMinus(checkState(state).watermark);
    },
  };
}
