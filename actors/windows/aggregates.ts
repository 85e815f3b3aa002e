import { InvalidOptionError } from '../../persistence';

/**
 * A custom aggregate. The accumulator must be JSON data: it lives in the
 * machine's context and in snapshots. `add` and `merge` receive copies, so
 * they may mutate and return their argument.
 */
export interface CustomAggregate<A = unknown, R = unknown> {
  init: () => A;
  add: (acc: A, value: number, item?: unknown) => A;
  result: (acc: A) => R;
  /** Combine two accumulators: required for session windows (sessions merge). */
  merge?: (a: A, b: A) => A;
}

export type BuiltInAggregate = 'count' | 'sum' | 'mean' | 'min' | 'max';

export type AggregateSpec<A = unknown, R = unknown> = BuiltInAggregate | CustomAggregate<A, R>;

/** An aggregate as the operator uses it: pure functions over JSON accumulators. */
export interface Aggregator {
  /** Custom aggregates see the item and get copies of their accumulators. */
  readonly custom: boolean;
  init(): unknown;
  add(acc: unknown, value: number, item: unknown): unknown;
  result(acc: unknown): unknown;
  merge: ((a: unknown, b: unknown) => unknown) | undefined;
}

const numeric = (init: unknown, step: (acc: number, v: number) => number): Aggregator => ({
  custom: false,
  init: () => init,
  add: (acc, v) => (acc === null ? v : step(acc as number, v)),
  result: (acc) => acc,
  merge: (a, b) => (a === null ? b : b === null ? a : step(a as number, b as number)),
});

const BUILT_IN: Record<BuiltInAggregate, Aggregator> = {
  count: { custom: false, init: () => 0, add: (acc) => (acc as number) + 1, result: (acc) => acc, merge: (a, b) => (a as number) + (b as number) },
  sum: numeric(0, (a, v) => a + v),
  min: numeric(null, Math.min),
  max: numeric(null, Math.max),
  mean: {
    custom: false,
    init: () => ({ sum: 0, n: 0 }),
    add: (acc, v) => {
      const a = acc as { sum: number; n: number };
      return { sum: a.sum + v, n: a.n + 1 };
    },
    result: (acc) => {
      const a = acc as { sum: number; n: number };
      return a.n === 0 ? null : a.sum / a.n;
    },
    merge: (x, y) => {
      const a = x as { sum: number; n: number };
      const b = y as { sum: number; n: number };
      return { sum: a.sum + b.sum, n: a.n + b.n };
    },
  },
};

function isJson(v: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return v.every((x) => isJson(x, depth + 1));
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v);
    return (proto === Object.prototype || proto === null) && Object.values(v).every((x) => isJson(x, depth + 1));
  }
  return false;
}

const copy = (v: unknown): unknown => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

/**
 * Resolve an aggregate spec. `needsMerge`: the window kind merges windows
 * (session), so a custom aggregate must give `merge`.
 */
export function resolveAggregate(spec: unknown, needsMerge: boolean): Aggregator {
  if (typeof spec === 'string') {
    if (!Object.hasOwn(BUILT_IN, spec)) throw new InvalidOptionError('aggregate', "'count' | 'sum' | 'mean' | 'min' | 'max' or { init, add, result, merge? }", spec);
    return BUILT_IN[spec as BuiltInAggregate];
  }
  if (typeof spec !== 'object' || spec === null) throw new InvalidOptionError('aggregate', "'count' | 'sum' | 'mean' | 'min' | 'max' or { init, add, result, merge? }", spec);
  const c = spec as Record<string, unknown>;
  for (const f of ['init', 'add', 'result'] as const) {
    if (typeof c[f] !== 'function') throw new InvalidOptionError(`aggregate.${f}`, 'a function', typeof c[f]);
  }
  if (c.merge !== undefined && typeof c.merge !== 'function') throw new InvalidOptionError('aggregate.merge', 'a function (a, b) => acc', typeof c.merge);
  if (needsMerge && c.merge === undefined) {
    throw new InvalidOptionError('aggregate.merge', 'a function (a, b) => acc: session windows merge when an event bridges them, so a custom aggregate needs merge', undefined);
  }
  const custom = spec as CustomAggregate;
  const init = custom.init();
  if (!isJson(init)) {
    throw new InvalidOptionError('aggregate.init', 'a function returning JSON data (plain objects, arrays, finite numbers, strings, booleans, null): the accumulator lives in machine context and snapshots', init);
  }
  const merge = custom.merge;
  const json = (fn: string, acc: unknown) => {
    if (!isJson(acc)) throw new InvalidOptionError(`aggregate.${fn}`, 'a function returning JSON data (the accumulator lives in machine context and snapshots)', acc);
    return acc;
  };
  return {
    custom: true,
    init: () => copy(custom.init()),
    add: (acc, v, item) => json('add', custom.add(copy(acc), v, item)),
    result: (acc) => custom.result(copy(acc)),
    merge: merge ? (a, b) => json('merge', merge(copy(a), copy(b))) : undefined,
  };
}
