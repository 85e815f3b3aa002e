import type { EventObject } from 'xstate';
import { InvalidOptionError } from '../../persistence';
import { TerminalActorError } from '../../supervisors';
import { showValue } from '../errors';

/** An event as a keyflow machine sees it: the sent object plus its event time `ts` and `id`. */
export type JoinEvent = EventObject & { ts: number; id?: string };

/** What a stream event with no table value to join does. */
export type OnMissing = 'emit-unenriched' | 'drop' | 'hold';

/** Which table value a stream event joins. */
export type Versioning = 'latest' | 'event-time';

/** Why `enrich` is called: with the joined table value, or without one. */
export interface JoinMeta {
  /** `'matched'`: `value` is the table value joined; `'missing'`: there is none (`onMissing: 'emit-unenriched'`); `'expired'`: a held event's bound passed. */
  reason: 'matched' | 'missing' | 'expired';
  /** Event time of the table event whose value is joined (undefined when unenriched). */
  tableTs: number | undefined;
}

export interface StreamTableJoinOptions<S extends JoinEvent = JoinEvent, T extends JoinEvent = JoinEvent, V = unknown, O extends { type: string } = { type: string }> {
  table: {
    /** Event type(s) that set the key's table value. */
    event: string | readonly string[];
    /** The value kept from a table event (JSON). @default the event without `type`, `id` and `ts` */
    select?: (event: T) => V;
    /** Event type(s) that delete the key's table value (a tombstone). */
    delete?: string | readonly string[];
  };
  stream: {
    /** Event type(s) enriched with the table value and emitted. */
    event: string | readonly string[];
  };
  /**
   * The output for a stream event (it must have a string `type`). `value` is
   * the joined table value, or `undefined` when the event goes out unenriched.
   * Must be pure: it runs again on a retried step.
   * @default `{ type: 'join.enriched', event, value, tableTs }` / `{ type: 'join.unenriched', event, reason }`
   */
  enrich?: (event: S, value: V | undefined, meta: JoinMeta) => O;
  /** A stream event with no table value: emitted unenriched, dropped, or held until one arrives. @default 'emit-unenriched' */
  onMissing?: OnMissing;
  /** Bounds of the events held (`onMissing: 'hold'`, and those waiting for `graceMs`). */
  hold?: {
    /** At most this many held events per key; the oldest goes first. @default 1000 */
    maxEvents?: number;
    /** A held event is given up when the key's watermark passes its `ts` (+ `graceMs`) + maxMs; a durable timer makes sure it does. @default undefined (no time bound) */
    maxMs?: number;
    /** What happens to a held event given up. @default 'emit-unenriched' */
    onExpire?: 'emit-unenriched' | 'drop';
  };
  /**
   * `'latest'`: a stream event joins the value of the latest table event
   * applied to the key before it (arrival order). `'event-time'`: it joins
   * the table version valid at its own `ts` (the table event with the largest
   * `ts` not after it), whatever the order of arrival. @default 'latest'
   */
  versioning?: Versioning;
  /** Event-time only: a stream event waits until the key's watermark passes its `ts` + graceMs, for table events arriving late. @default 0 */
  graceMs?: number;
  /** Event-time only: table versions older than the watermark minus historyMs are dropped (the one valid at that time is kept). @default undefined (kept while under maxVersions) */
  historyMs?: number;
  /** Event-time only: at most this many table versions kept per key; the oldest go first. @default 100 */
  maxVersions?: number;
}

/** A version of the table side: the value set by a table event at `ts`, or a tombstone. */
export interface TableVersion<V = unknown> {
  ts: number;
  value?: V;
  deleted?: true;
}

/** A stream-table join's state: JSON data, meant to live in a machine's context (and so in snapshots). */
export interface JoinState<V = unknown, S = JoinEvent> {
  /** Largest event time of the join's events seen (table, stream, timer); `null` before the first. */
  watermark: number | null;
  /** Table versions by `ts` (`'latest'`: at most one, the latest applied). */
  versions: TableVersion<V>[];
  /** Stream events held (no table value yet, or waiting for `graceMs`), in arrival order. */
  waiting: S[];
  /** Watermark at which the armed timer fires; `null`: none armed. */
  timerAt: number | null;
  stats: { enriched: number; unenriched: number; dropped: number };
}

/**
 * The durable timer a step asks for: (re-)arm it to fire in `delayMs` as the
 * event `{ type: JOIN_TICK_EVENT, at }`, which brings the watermark to `at`;
 * or cancel it.
 */
export type JoinTimer = { op: 'arm'; at: number; delayMs: number } | { op: 'cancel' };

export interface JoinStep<V = unknown, S = JoinEvent, O = { type: string }> {
  state: JoinState<V, S>;
  /** Outputs of this step, in order. */
  outputs: O[];
  timer?: JoinTimer;
}

export interface StreamTableJoinOperator<S extends JoinEvent = JoinEvent, V = unknown, O extends { type: string } = { type: string }> {
  init(): JoinState<V, S>;
  /**
   * Apply one event: a table event sets (or deletes) the value, a stream
   * event is enriched, held or dropped, the timer event releases what is due.
   * Other events change nothing. Pure: the same state and event give the same step.
   */
  step(state: JoinState<V, S>, event: JoinEvent): JoinStep<V, S, O>;
}

/** Type of the timer event a join arms for itself (reserved: `send` rejects it). */
export const JOIN_TICK_EVENT = '@keyflow/join.tick';

/** A join event whose `ts` is not a finite number: it cannot be placed in event time. */
export class InvalidJoinEventError extends TerminalActorError {
  constructor(
    readonly eventType: string,
    readonly ts: unknown,
  ) {
    super(`stream-table join: event '${eventType}' has ts ${showValue(ts)}, not a finite number: a join places every event in event time (send it with opts.ts, or leave ts out)`, undefined, 'INVALID_JOIN_EVENT');
  }
}

const OPTION_KEYS = new Set(['table', 'stream', 'enrich', 'onMissing', 'hold', 'versioning', 'graceMs', 'historyMs', 'maxVersions']);

function types(name: string, v: unknown, required: boolean): string[] {
  if (v === undefined && !required) return [];
  const list = typeof v === 'string' ? [v] : Array.isArray(v) ? (v as unknown[]) : undefined;
  if (!list || (required && list.length === 0) || !list.every((t) => typeof t === 'string' && t.length > 0)) {
    throw new InvalidOptionError(name, 'an event type or a non-empty array of event types', v);
  }
  return list as string[];
}

function int(name: string, v: unknown, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new InvalidOptionError(name, `an integer >= ${min}`, v);
  return v;
}

function oneOf<T extends string>(name: string, v: unknown, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (!allowed.includes(v as T)) throw new InvalidOptionError(name, allowed.map((a) => `'${a}'`).join(' | '), v);
  return v as T;
}

function fn(name: string, v: unknown): void {
  if (v !== undefined && typeof v !== 'function') throw new InvalidOptionError(name, 'a function', typeof v);
}

const defaultSelect = (event: JoinEvent): unknown => {
  const { type: _type, id: _id, ts: _ts, ...value } = event as JoinEvent & Record<string, unknown>;
  return value;
};

/**
 * The stream-table join as a pure operator over JSON state, for any
 * machine's context; `streamTableJoin` wraps it in a ready-made machine.
 * Validates every option, naming the one that is wrong.
 */
export function streamTableJoinOperator<S extends JoinEvent = JoinEvent, T extends JoinEvent = JoinEvent, V = unknown, O extends { type: string } = { type: string }>(
  opts: StreamTableJoinOptions<S, T, V, O>,
): StreamTableJoinOperator<S, V, O> {
  if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('streamTableJoin(options)', 'an object { table, stream, enrich?, onMissing?, ... }', opts);
  for (const k of Object.keys(opts)) {
    if (!OPTION_KEYS.has(k)) throw new InvalidOptionError(k, `no such option of streamTableJoin (known: ${[...OPTION_KEYS].join(', ')})`, (opts as unknown as Record<string, unknown>)[k]);
  }
  if (typeof opts.table !== 'object' || opts.table === null) throw new InvalidOptionError('table', 'an object { event, select?, delete? }', opts.table);
  if (typeof opts.stream !== 'object' || opts.stream === null) throw new InvalidOptionError('stream', 'an object { event }', opts.stream);
  const tableTypes = new Set(types('table.event', opts.table.event, true));
  const deleteTypes = new Set(types('table.delete', opts.table.delete, false));
  const streamTypes = new Set(types('stream.event', opts.stream.event, true));
  const all = [...tableTypes, ...deleteTypes, ...streamTypes];
  const reused = all.find((t, i) => all.indexOf(t) !== i);
  if (reused !== undefined) throw new InvalidOptionError('table.event / table.delete / stream.event', 'disjoint event types', reused);
  for (const t of all) if (t.startsWith('@keyflow/') || t.startsWith('xstate.')) throw new InvalidOptionError('event types', 'types not reserved by keyflow or XState (@keyflow/*, xstate.*)', t);
  fn('table.select', opts.table.select);
  fn('enrich', opts.enrich);
  const onMissing = oneOf<OnMissing>('onMissing', opts.onMissing, ['emit-unenriched', 'drop', 'hold'], 'emit-unenriched');
  const versioning = oneOf<Versioning>('versioning', opts.versioning, ['latest', 'event-time'], 'latest');
  if (opts.hold !== undefined && (typeof opts.hold !== 'object' || opts.hold === null)) throw new InvalidOptionError('hold', 'an object { maxEvents?, maxMs?, onExpire? }', opts.hold);
  const maxEvents = int('hold.maxEvents', opts.hold?.maxEvents, 1) ?? 1_000;
  const maxMs = int('hold.maxMs', opts.hold?.maxMs, 0) ?? Number.POSITIVE_INFINITY;
  const onExpire = oneOf<'emit-unenriched' | 'drop'>('hold.onExpire', opts.hold?.onExpire, ['emit-unenriched', 'drop'], 'emit-unenriched');
  for (const k of ['graceMs', 'historyMs', 'maxVersions'] as const) {
    if (opts[k] !== undefined && versioning !== 'event-time') throw new InvalidOptionError(k, "to be left out unless versioning is 'event-time'", opts[k]);
  }
  const graceMs = int('graceMs', opts.graceMs, 0) ?? 0;
  const historyMs = int('historyMs', opts.historyMs, 0);
  const maxVersions = int('maxVersions', opts.maxVersions, 1) ?? 100;
  const select = (opts.table.select ?? defaultSelect) as (event: JoinEvent) => V;
  const enrich = (opts.enrich ??
    ((event: S, value: V | undefined, meta: JoinMeta) =>
      meta.reason === 'matched' ? { type: 'join.enriched', event, value, tableTs: meta.tableTs } : { type: 'join.unenriched', event, reason: meta.reason })) as (
    event: S,
    value: V | undefined,
    meta: JoinMeta,
  ) => O;
  const eventTime = versioning === 'event-time';

  /** The table version a stream event at `ts` joins, if any. */
  const lookup = (versions: TableVersion<V>[], ts: number): TableVersion<V> | undefined => {
    let found: TableVersion<V> | undefined;
    if (!eventTime) found = versions[versions.length - 1];
    else for (const v of versions) if (v.ts <= ts) found = v;
    return found && !found.deleted ? found : undefined;
  };

  const setVersion = (versions: TableVersion<V>[], version: TableVersion<V>, watermark: number): TableVersion<V>[] => {
    if (!eventTime) return version.deleted ? [] : [version];
    // Insert by ts; a second table event at the same ts replaces the first (later arrival wins).
    const next = versions.filter((v) => v.ts !== version.ts);
    let i = next.length;
    while (i > 0 && next[i - 1]!.ts > version.ts) i--;
    next.splice(i, 0, version);
    if (historyMs !== undefined) {
      const cutoff = watermark - historyMs;
      while (next.length > 1 && next[1]!.ts <= cutoff) next.shift();
    }
    while (next.length > maxVersions) next.shift();
    return next;
  };

  return {
    init: () => ({ watermark: null, versions: [], waiting: [], timerAt: null, stats: { enriched: 0, unenriched: 0, dropped: 0 } }),

    step(state, event) {
      const type = event.type;
      const isTable = tableTypes.has(type);
      const isDelete = deleteTypes.has(type);
      const isStream = streamTypes.has(type);
      const isTick = type === JOIN_TICK_EVENT;
      if (!isTable && !isDelete && !isStream && !isTick) return { state, outputs: [] };
      const ts = event.ts;
      if (typeof ts !== 'number' || !Number.isFinite(ts)) throw new InvalidJoinEventError(type, ts);

      // The timer's firing brings the watermark to the time it was armed for (its `at`).
      const armedFor = isTick ? (event as { at?: unknown }).at : undefined;
      const at = typeof armedFor === 'number' ? armedFor : ts;
      const watermark = Math.max(state.watermark ?? ts, ts, at);
      let versions = state.versions;
      if (isTable) versions = setVersion(versions, { ts, value: JSON.parse(JSON.stringify(select(event as T) ?? null)) as V }, watermark);
      else if (isDelete) versions = setVersion(versions, { ts, deleted: true }, watermark);
      const waiting = isStream ? [...state.waiting, event as S] : state.waiting;
      const stats = { ...state.stats };
      const outputs: O[] = [];

      const readyAt = (e: S) => (eventTime ? e.ts + graceMs : Number.NEGATIVE_INFINITY);
      const expireAt = (e: S) => (eventTime ? e.ts + graceMs : e.ts) + maxMs;
      const emit = (e: S, version: TableVersion<V> | undefined, reason: JoinMeta['reason']) => {
        const out = enrich(e, version?.value, { reason, tableTs: version?.ts });
        if (typeof out !== 'object' || out === null || typeof (out as { type?: unknown }).type !== 'string') {
          throw new TypeError(`stream-table join: enrich returned ${showValue(out)}, not an object with a string 'type'`);
        }
        outputs.push(out);
        if (reason === 'matched') stats.enriched++;
        else stats.unenriched++;
      };
      const giveUp = (e: S) => {
        if (onExpire === 'drop') stats.dropped++;
        else emit(e, undefined, 'expired');
      };
      /** Settle a held event now if it can be: true when it leaves the waiting list. */
      const settle = (e: S, force: boolean): boolean => {
        if (!force && watermark < readyAt(e)) return false;
        const version = lookup(versions, e.ts);
        if (version) emit(e, version, 'matched');
        else if (force) giveUp(e);
        else if (onMissing === 'emit-unenriched') emit(e, undefined, 'missing');
        else if (onMissing === 'drop') stats.dropped++;
        else if (watermark >= expireAt(e)) giveUp(e);
        else return false;
        return true;
      };

      const kept = waiting.filter((e) => !settle(e, false));
      while (kept.length > maxEvents) settle(kept.shift()!, true);

      // One durable timer, armed for the earliest watermark at which a held event is due.
      let next = Number.POSITIVE_INFINITY;
      for (const e of kept) next = Math.min(next, watermark < readyAt(e) ? readyAt(e) : expireAt(e));
      const timerAt = Number.isFinite(next) ? next : null;
      let timer: JoinTimer | undefined;
      // Due when as much time has passed as the watermark lacks (event time read as wall time).
      if (timerAt !== null && (timerAt !== state.timerAt || isTick)) timer = { op: 'arm', at: timerAt, delayMs: timerAt - watermark };
      else if (timerAt === null && state.timerAt !== null && !isTick) timer = { op: 'cancel' };
      return { state: { watermark, versions, waiting: kept, timerAt, stats }, outputs, ...(timer ? { timer } : {}) };
    },
  };
}
