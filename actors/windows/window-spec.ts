import { InvalidOptionError } from '../../persistence';

/**
 * What a window is. Time windows (`sizeMs`, `gapMs`) are in event time;
 * count windows (`count`) are in arrival order. See docs/windows.md.
 */
export type WindowSpec =
  | { kind: 'tumbling'; sizeMs: number }
  | { kind: 'hopping'; sizeMs: number; hopMs: number }
  | { kind: 'sliding'; sizeMs: number }
  | { kind: 'session'; gapMs: number }
  | { kind: 'tumbling'; count: number }
  | { kind: 'hopping'; count: number; hop: number };

/**
 * A window's resolved shape. `aligned`: windows `[k·hop, k·hop + size)` of
 * event time; `count`: windows of `size` items starting every `hop` items.
 */
export type ResolvedWindow =
  | { type: 'aligned'; size: number; hop: number }
  | { type: 'sliding'; size: number }
  | { type: 'session'; gap: number }
  | { type: 'count'; size: number; hop: number };

/**
 * Most windows one item may belong to (`sizeMs / hopMs`, `count / hop`):
 * each is a separate accumulator in the key's state.
 */
export const MAX_WINDOWS_PER_ITEM = 1_000;

const FIELDS: Record<string, Record<string, string[]>> = {
  tumbling: { time: ['sizeMs'], count: ['count'] },
  hopping: { time: ['sizeMs', 'hopMs'], count: ['count', 'hop'] },
  sliding: { time: ['sizeMs'] },
  session: { time: ['gapMs'] },
};

const SHAPES = "{ kind: 'tumbling', sizeMs } | { kind: 'hopping', sizeMs, hopMs } | { kind: 'sliding', sizeMs } | { kind: 'session', gapMs } | { kind: 'tumbling', count } | { kind: 'hopping', count, hop }";

/** A positive safe integer, or an InvalidOptionError naming `option`. */
export function positiveInteger(option: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new InvalidOptionError(option, 'an integer >= 1', v);
  return v;
}

/** A non-negative safe integer (default `dflt` when undefined), or an InvalidOptionError naming `option`. */
export function nonNegativeInteger(option: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new InvalidOptionError(option, 'an integer >= 0', v);
  return v;
}

/**
 * Validate a window spec: the kind, exactly the fields of one shape (no
 * mixing of time and count fields, no unknown fields), each a positive
 * integer, a hop no longer than the window.
 */
export function resolveWindow(spec: unknown): ResolvedWindow {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new InvalidOptionError('window', SHAPES, spec);
  const w = spec as Record<string, unknown>;
  const kind = w.kind;
  if (typeof kind !== 'string' || !Object.hasOwn(FIELDS, kind)) {
    throw new InvalidOptionError('window.kind', "'tumbling' | 'hopping' | 'sliding' | 'session'", kind);
  }
  const shapes = FIELDS[kind]!;
  const given = Object.keys(w).filter((k) => k !== 'kind' && w[k] !== undefined);
  const shape = w.count !== undefined && shapes.count ? 'count' : 'time';
  if (shape === 'count' && w.sizeMs !== undefined) {
    throw new InvalidOptionError('window', `either sizeMs (a time window) or count (a count window), not both`, spec);
  }
  const fields = shapes[shape]!;
  for (const k of given) {
    if (!fields.includes(k)) {
      const all = Object.values(shapes).map((f) => `{ kind: '${kind}', ${f.join(', ')} }`).join(' or ');
      throw new InvalidOptionError(`window.${k}`, `no such field for ${all}`, w[k]);
    }
  }
  const n = (f: string) => positiveInteger(`window.${f}`, w[f]);
  let r: ResolvedWindow;
  if (shape === 'count') {
    const size = n('count');
    const hop = kind === 'hopping' ? n('hop') : size;
    if (hop > size) throw new InvalidOptionError('window.hop', `an integer <= window.count (${size}): a hop longer than the window skips items`, hop);
    r = { type: 'count', size, hop };
  } else if (kind === 'session') {
    r = { type: 'session', gap: n('gapMs') };
  } else if (kind === 'sliding') {
    r = { type: 'sliding', size: n('sizeMs') };
  } else {
    const size = n('sizeMs');
    const hop = kind === 'hopping' ? n('hopMs') : size;
    if (hop > size) throw new InvalidOptionError('window.hopMs', `an integer <= window.sizeMs (${size}): a hop longer than the window skips events`, hop);
    r = { type: 'aligned', size, hop };
  }
  if (r.type === 'aligned' || r.type === 'count') {
    const per = Math.ceil(r.size / r.hop);
    if (per > MAX_WINDOWS_PER_ITEM) {
      const [sizeName, hopName] = r.type === 'aligned' ? ['sizeMs', 'hopMs'] : ['count', 'hop'];
      throw new InvalidOptionError(`window.${hopName}`, `at least window.${sizeName} / ${MAX_WINDOWS_PER_ITEM} (each item is in ceil(${sizeName} / ${hopName}) windows, at most ${MAX_WINDOWS_PER_ITEM})`, r.hop);
    }
  }
  return r;
}

/** Grace period of a window: time windows only (count windows have no lateness). */
export function resolveGrace(graceMs: unknown, window: ResolvedWindow): number {
  const grace = nonNegativeInteger('graceMs', graceMs, 0);
  if (window.type === 'count' && grace > 0) {
    throw new InvalidOptionError('graceMs', '0 or undefined for a count window (count windows close when full: no lateness, no grace)', graceMs);
  }
  return grace;
}
