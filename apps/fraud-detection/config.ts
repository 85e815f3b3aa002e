/**
 * The thresholds of the rules, every one configurable. `resolveRules` fills a
 * partial configuration with the defaults and checks it; a wrong value is an
 * InvalidRulesError naming the setting.
 */
import { z } from 'zod';
import { KeyflowError } from '../../index';

export interface RulesConfig {
  velocity: {
    /** Alert when a sliding window holds more than this many transactions. @default 8 */
    maxCount: number;
    /** Size of the sliding window (ms). @default 600000 (10 min) */
    windowMs: number;
  };
  amountSpike: {
    /** Alert when the amount is above mean + k·stddev of the account's history. @default 4 */
    k: number;
    /** Transactions of history needed before the rule scores (a short history underestimates the spread). @default 15 */
    minHistory: number;
    /**
     * Keep the statistics of ln(amount) rather than amount: card amounts are
     * close to log-normal, and one large legitimate purchase would otherwise
     * inflate the standard deviation for good. @default true
     */
    logScale: boolean;
    /**
     * Floor of the standard deviation (in the scale used), so a very regular
     * account is not flagged for an ordinary large purchase; 0.5 in log scale
     * = amounts are never assumed to vary by less than about ±65%. @default 0.5
     */
    minStddev: number;
  };
  impossibleTravel: {
    /** Alert when two transactions imply a speed above this (km/h). @default 900 */
    maxKmh: number;
    /** Ignore pairs closer than this (km): card terminals' coordinates are approximate. @default 100 */
    minKm: number;
  };
  cardTesting: {
    /** A "small" amount is at most this. @default 2 */
    smallMax: number;
    /** Small amounts needed in the session before a large one. @default 3 */
    minSmall: number;
    /** A "large" amount is at least this. @default 100 */
    largeMin: number;
    /** Session gap (ms): transactions closer than this belong to one session. @default 600000 (10 min) */
    gapMs: number;
  };
  /** Event-time lateness allowed to the windows (ms); later transactions are counted as late. @default 300000 (5 min) */
  graceMs: number;
  status: {
    /** Alerts within `withinMs` that move a watched account to `blocked`. @default 3 */
    blockAfterAlerts: number;
    /** @default 86400000 (24 h) */
    withinMs: number;
    /** A watched account with no alert for this long (event time) returns to `normal` on its next transaction. @default 604800000 (7 days) */
    watchCooldownMs: number;
  };
}

export const DEFAULT_RULES: RulesConfig = {
  velocity: { maxCount: 8, windowMs: 10 * 60_000 },
  amountSpike: { k: 4, minHistory: 15, logScale: true, minStddev: 0.5 },
  impossibleTravel: { maxKmh: 900, minKm: 100 },
  cardTesting: { smallMax: 2, minSmall: 3, largeMin: 100, gapMs: 10 * 60_000 },
  graceMs: 5 * 60_000,
  status: { blockAfterAlerts: 3, withinMs: 24 * 3_600_000, watchCooldownMs: 7 * 24 * 3_600_000 },
};

export type RulesOverrides = { [K in keyof RulesConfig]?: RulesConfig[K] extends object ? Partial<RulesConfig[K]> : RulesConfig[K] };

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();
const pos = z.number().positive();

const schema = z
  .object({
    velocity: z.object({ maxCount: posInt, windowMs: posInt }).strict(),
    amountSpike: z.object({ k: pos, minHistory: z.number().int().min(2), logScale: z.boolean(), minStddev: z.number().nonnegative() }).strict(),
    impossibleTravel: z.object({ maxKmh: pos, minKm: z.number().nonnegative() }).strict(),
    cardTesting: z.object({ smallMax: pos, minSmall: posInt, largeMin: pos, gapMs: posInt }).strict(),
    graceMs: nonNegInt,
    status: z.object({ blockAfterAlerts: posInt, withinMs: posInt, watchCooldownMs: posInt }).strict(),
  })
  .strict()
  .refine((c) => c.cardTesting.largeMin > c.cardTesting.smallMax, { message: 'cardTesting.largeMin must be above cardTesting.smallMax', path: ['cardTesting', 'largeMin'] });

export class InvalidRulesError extends KeyflowError {
  constructor(message: string) {
    super('INVALID_RULES', message);
  }
}

/** The defaults with `overrides` applied, checked. */
export function resolveRules(overrides: RulesOverrides = {}): RulesConfig {
  if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) {
    throw new InvalidRulesError(`rules: expected an object, received ${JSON.stringify(overrides)}`);
  }
  const merged: Record<string, unknown> = { ...DEFAULT_RULES };
  for (const [k, v] of Object.entries(overrides)) {
    const base = (DEFAULT_RULES as unknown as Record<string, unknown>)[k];
    merged[k] = typeof base === 'object' && typeof v === 'object' && v !== null && !Array.isArray(v) ? { ...base, ...v } : v;
  }
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.join('.');
    const keys = issue.code === 'unrecognized_keys' ? ` (${issue.keys.map((key) => [path, key].filter(Boolean).join('.')).join(', ')})` : '';
    throw new InvalidRulesError(`rules${path ? `.${path}` : ''}: ${issue.message}${keys}`);
  }
  return parsed.data;
}

/**
 * Apply `path=value` settings (as the CLI's --set takes them) to overrides,
 * e.g. `velocity.maxCount=10`, `amountSpike.logScale=false`.
 */
export function applySetting(overrides: RulesOverrides, setting: string): RulesOverrides {
  const eq = setting.indexOf('=');
  if (eq <= 0) throw new InvalidRulesError(`--set ${JSON.stringify(setting)}: expected path=value, e.g. velocity.maxCount=10`);
  const path = setting.slice(0, eq).split('.');
  const raw = setting.slice(eq + 1).trim();
  const value = raw === 'true' ? true : raw === 'false' ? false : raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  const out = JSON.parse(JSON.stringify(overrides)) as Record<string, unknown>;
  if (path.length === 1) out[path[0]!] = value;
  else if (path.length === 2) out[path[0]!] = { ...((out[path[0]!] as object | undefined) ?? {}), [path[1]!]: value };
  else throw new InvalidRulesError(`--set ${JSON.stringify(setting)}: a path has one or two parts, e.g. graceMs or velocity.maxCount`);
  return out as RulesOverrides;
}
