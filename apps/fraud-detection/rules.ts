/**
 * The rules, as one pure function over an account's rule state: given the
 * state and a transaction, the next state, the alerts to raise and whether
 * the transaction came late. Deterministic (time is the transactions' event
 * time), so replaying an account's journal rebuilds exactly the same state.
 *
 *   velocity           sliding event-time window (keyflow windowOperator): more than
 *                      `maxCount` transactions within `windowMs`
 *   card-testing       session window: at least `minSmall` amounts <= `smallMax`, and then
 *                      an amount >= `largeMin` in the same session
 *   amount-spike       amount above mean + k·stddev of the account's history (Welford)
 *   impossible-travel  the speed implied by the transaction and its neighbour in event time;
 *                      a transaction found out of place is alerted once (the way back
 *                      from it to where the account was is not alerted again)
 *
 * Windowed rules fire as soon as the condition holds (early firing on the open
 * windows), at most once per window. A window that overlaps one already
 * alerted for the same rule is the same incident and is not alerted again: the
 * successive sliding windows of one burst, a session that grew.
 *
 * A transaction later than the grace period (its windows are closed) is not
 * counted in the windows; amount-spike and impossible-travel still score it.
 */
import { windowOperator, type WindowState } from '../../index';
import type { RulesConfig } from './config';
import { distanceKm } from './geo';
import type { Transaction } from './transaction';
import { emptyWelford, welfordAdd, welfordStddev, type Welford } from './welford';

export const RULES = ['velocity', 'amount-spike', 'impossible-travel', 'card-testing'] as const;
export type RuleName = (typeof RULES)[number];

/** The output the account actor emits, exactly once per account, rule and window. */
export interface FraudAlert {
  type: 'fraud.alert';
  accountId: string;
  rule: RuleName;
  /** The transactions that make up the evidence, in event-time order; the last one triggered the alert (except for impossible-travel, where it is the later of the pair). */
  txIds: string[];
  /** Event time of the triggering transaction. */
  ts: number;
  /** Severity: the observed value over the rule's threshold (> 1), rounded to 3 decimals. */
  score: number;
  detail: Record<string, number | string | boolean | null>;
}

/** A transaction as the account actor receives it (the account is the actor's key). */
export type TxFields = Omit<Transaction, 'accountId'>;

/** A recent transaction, kept for the evidence of windowed alerts and for travel. */
export interface Recent {
  id: string;
  ts: number;
  amount: number;
  lat: number;
  lng: number;
  country: string;
}

export interface RulesState {
  velocity: WindowState;
  cardTesting: WindowState;
  amounts: Welford;
  /** The latest transactions by event time, oldest first. */
  recent: Recent[];
  /**
   * Windows already alerted, per windowed rule: [start, end), newest last;
   * for impossible-travel, the transactions found out of place.
   */
  fired: { velocity: [number, number][]; 'card-testing': [number, number][]; 'impossible-travel': string[] };
}

export interface Scored {
  state: RulesState;
  alerts: FraudAlert[];
  /** Beyond the grace period: not counted in the windows. */
  late: boolean;
  /** The account's watermark after this transaction (largest event time seen). */
  watermark: number;
}

/** Alerted windows remembered per rule (older ones end long before anything still open). */
const FIRED_KEPT = 16;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

export interface Scorer {
  readonly rules: RulesConfig;
  init(): RulesState;
  score(state: RulesState, accountId: string, tx: TxFields): Scored;
}

export function createScorer(rules: RulesConfig): Scorer {
  const velocityOp = windowOperator({ window: { kind: 'sliding', sizeMs: rules.velocity.windowMs }, graceMs: rules.graceMs, aggregate: 'count' });
  // The sum of "is small" over the session = how many small amounts it holds.
  const sessionOp = windowOperator({ window: { kind: 'session', gapMs: rules.cardTesting.gapMs }, graceMs: rules.graceMs, aggregate: 'sum' });
  const recentKept = Math.max(16, rules.velocity.maxCount + 1, rules.cardTesting.minSmall + 1);

  const overlapsFired = (fired: [number, number][], start: number, end: number) => fired.some(([s, e]) => s < end && start < e);
  const remember = (fired: [number, number][], start: number, end: number): [number, number][] => [...fired.slice(-(FIRED_KEPT - 1)), [start, end]];

  /** Returns whether the transaction was too late for the window. */
  function velocity(state: RulesState, accountId: string, tx: TxFields, out: FraudAlert[]): { next: RulesState; late: boolean } {
    const step = velocityOp.add(state.velocity, { ts: tx.ts, value: 1 });
    let next: RulesState = { ...state, velocity: step.state };
    if (step.late) return { next, late: true };
    const over = [...step.results, ...velocityOp.open(step.state)].filter((w) => w.count > rules.velocity.maxCount);
    for (const w of over) {
      if (overlapsFired(next.fired.velocity, w.start, w.end)) continue;
      const inWindow = next.recent.filter((r) => r.ts >= w.start && r.ts < w.end).slice(-(rules.velocity.maxCount + 1));
      out.push({
        type: 'fraud.alert',
        accountId,
        rule: 'velocity',
        txIds: inWindow.map((r) => r.id),
        ts: tx.ts,
        score: round3(w.count / rules.velocity.maxCount),
        detail: { count: w.count, maxCount: rules.velocity.maxCount, windowStart: w.start, windowEnd: w.end },
      });
      next = { ...next, fired: { ...next.fired, velocity: remember(next.fired.velocity, w.start, w.end) } };
    }
    return { next, late: false };
  }

  function cardTesting(state: RulesState, accountId: string, tx: TxFields, out: FraudAlert[]): RulesState {
    const { smallMax, minSmall, largeMin } = rules.cardTesting;
    const step = sessionOp.add(state.cardTesting, { ts: tx.ts, value: tx.amount <= smallMax ? 1 : 0 });
    let next: RulesState = { ...state, cardTesting: step.state };
    if (step.late || tx.amount < largeMin) return next;
    const session = sessionOp.open(step.state).find((w) => w.start <= tx.ts && tx.ts < w.end);
    if (!session || session.value < minSmall || overlapsFired(next.fired['card-testing'], session.start, session.end)) return next;
    const small = next.recent.filter((r) => r.ts >= session.start && r.ts <= tx.ts && r.amount <= smallMax && r.id !== tx.id);
    out.push({
      type: 'fraud.alert',
      accountId,
      rule: 'card-testing',
      txIds: [...small.map((r) => r.id), tx.id],
      ts: tx.ts,
      score: round3(session.value / minSmall),
      detail: { smallCount: session.value, minSmall, amount: tx.amount, largeMin, sessionStart: session.start, sessionEnd: session.end },
    });
    next = { ...next, fired: { ...next.fired, 'card-testing': remember(next.fired['card-testing'], session.start, session.end) } };
    return next;
  }

  function amountSpike(state: RulesState, accountId: string, tx: TxFields, out: FraudAlert[]): RulesState {
    const { k, minHistory, logScale, minStddev } = rules.amountSpike;
    const x = logScale ? Math.log(tx.amount) : tx.amount;
    const w = state.amounts;
    if (w.n >= minHistory) {
      const sd = Math.max(welfordStddev(w), minStddev);
      const z = (x - w.mean) / sd;
      if (z > k) {
        const back = (v: number) => round3(logScale ? Math.exp(v) : v);
        out.push({
          type: 'fraud.alert',
          accountId,
          rule: 'amount-spike',
          txIds: [tx.id],
          ts: tx.ts,
          score: round3(z / k),
          detail: { amount: tx.amount, typical: back(w.mean), threshold: back(w.mean + k * sd), z: round3(z), k, history: w.n, logScale },
        });
        // A flagged amount stays out of the history it is judged against.
        return state;
      }
    }
    return { ...state, amounts: welfordAdd(w, x) };
  }

  function impossibleTravel(state: RulesState, accountId: string, tx: TxFields, out: FraudAlert[]): RulesState {
    const { maxKmh, minKm } = rules.impossibleTravel;
    // Neighbours in event time: the latest before (or at) it, and, for a transaction out of order, the first after it.
    let before: Recent | undefined;
    let after: Recent | undefined;
    for (const r of state.recent) {
      if (r.ts <= tx.ts) before = r;
      else if (!after) after = r;
    }
    let flagged = state.fired['impossible-travel'];
    for (const other of [before, after]) {
      if (!other || flagged.includes(other.id)) continue;
      const km = distanceKm(other.lat, other.lng, tx.lat, tx.lng);
      if (km < minKm) continue;
      const ms = Math.abs(tx.ts - other.ts);
      // At least one second apart, so the speed stays finite.
      const kmh = km / (Math.max(ms, 1_000) / 3_600_000);
      if (kmh <= maxKmh) continue;
      const [first, second] = other.ts <= tx.ts ? [other, { ...tx }] : [{ ...tx }, other];
      out.push({
        type: 'fraud.alert',
        accountId,
        rule: 'impossible-travel',
        txIds: [first.id, second.id],
        ts: tx.ts,
        score: round3(kmh / maxKmh),
        detail: { km: round3(km), minutes: round3(ms / 60_000), kmh: round3(kmh), maxKmh, fromCountry: first.country, toCountry: second.country },
      });
      flagged = [...flagged.slice(-(FIRED_KEPT - 1)), tx.id];
      break;
    }
    return flagged === state.fired['impossible-travel'] ? state : { ...state, fired: { ...state.fired, 'impossible-travel': flagged } };
  }

  function withRecent(recent: Recent[], tx: TxFields): Recent[] {
    const entry: Recent = { id: tx.id, ts: tx.ts, amount: tx.amount, lat: tx.lat, lng: tx.lng, country: tx.country };
    let i = recent.length;
    while (i > 0 && recent[i - 1]!.ts > tx.ts) i--;
    const next = [...recent.slice(0, i), entry, ...recent.slice(i)];
    return next.length > recentKept ? next.slice(next.length - recentKept) : next;
  }

  return {
    rules,
    init: () => ({ velocity: velocityOp.init(), cardTesting: sessionOp.init(), amounts: emptyWelford(), recent: [], fired: { velocity: [], 'card-testing': [], 'impossible-travel': [] } }),
    score(state, accountId, tx) {
      const alerts: FraudAlert[] = [];
      // Travel compares with the history before this transaction joins it.
      let next = impossibleTravel(state, accountId, tx, alerts);
      next = { ...next, recent: withRecent(next.recent, tx) };
      next = amountSpike(next, accountId, tx, alerts);
      const v = velocity(next, accountId, tx, alerts);
      next = cardTesting(v.next, accountId, tx, alerts);
      return { state: next, alerts, late: v.late, watermark: velocityOp.watermark(next.velocity) };
    },
  };
}
