/**
 * The labelled data generator: card transactions of many accounts with
 * realistic normal behaviour, and fraud incidents of each kind the rules
 * look for injected into some accounts. The labels (which transactions belong
 * to which incident) are kept apart from the transactions.
 *
 * Normal behaviour, per account: a home city (coordinates jittered around it),
 * a typical amount (log-normal, its own median and spread), a daily rhythm
 * (few purchases at night, peaks at lunch and in the evening), a set of
 * favourite merchants, now and then a legitimate large purchase, online
 * purchases from shops registered abroad, for some accounts a burst of
 * purchases within minutes, and for some a trip to another city by plane (the
 * first purchase there comes after a plausible flight). A small share of transactions reach the input
 * late (an offline terminal uploading hours afterwards).
 *
 * Fraud incidents (one per fraudulent account, the kinds in equal shares):
 *   velocity          7–20 purchases within 3–12 minutes
 *   amount-spike      one purchase 6–150× the account's typical amount
 *   impossible-travel a purchase ≥ 500 km from home 10–240 minutes after one at home
 *   card-testing      2–8 tiny amounts a minute or two apart, then a large one (80–1 500)
 *
 * Not every incident is detectable with the default thresholds (7 purchases
 * in 12 minutes, 700 km in 3 hours), and normal behaviour has its own
 * near misses: bursts of purchases, online shops registered abroad, large
 * purchases now and then, trips.
 *
 * Same options and seed, same files, byte for byte.
 */
import { distanceKm } from './geo';
import { Random } from './random';
import { RULES, type RuleName } from './rules';
import type { Transaction } from './transaction';

/** One kind of incident per rule, in the rules' order (the order assigns kinds to accounts: it is part of the seed's output). */
export const FRAUD_PATTERNS: readonly RuleName[] = RULES;
export type FraudPattern = RuleName;

/** One injected incident: the transactions that make it up. */
export interface Incident {
  incident: string;
  pattern: FraudPattern;
  accountId: string;
  txIds: string[];
  start: number;
  end: number;
}

export interface GeneratorOptions {
  /** @default 1000 */
  accounts: number;
  /** Transactions in all, fraud included. @default 50000 */
  tx: number;
  /** @default 1 */
  seed: number;
  /** Days covered. @default 30 */
  days: number;
  /** Event time of the first day's midnight (ms). @default 2026-01-05T00:00:00Z */
  start: number;
  /** Share of accounts with a fraud incident. @default 0.04 */
  fraudRate: number;
  /** Share of normal transactions delivered late (6–48 hours after their event time). @default 0.002 */
  lateRate: number;
  /**
   * Share of normal transactions bought online from a shop registered abroad
   * (they carry the shop's coordinates: a legitimate "impossible" trip).
   * @default 0.0002
   */
  onlineAbroadRate: number;
}

export const GENERATOR_DEFAULTS: GeneratorOptions = {
  accounts: 1000,
  tx: 50_000,
  seed: 1,
  days: 30,
  start: Date.UTC(2026, 0, 5),
  fraudRate: 0.04,
  lateRate: 0.002,
  onlineAbroadRate: 0.0002,
};

export interface GeneratedData {
  /** In input order: by arrival (event time, or later for the late ones). */
  transactions: Transaction[];
  incidents: Incident[];
  /** Ids of the transactions delivered late. */
  late: string[];
}

interface City {
  name: string;
  lat: number;
  lng: number;
  country: string;
  currency: string;
}

const CITIES: City[] = [
  { name: 'paris', lat: 48.8566, lng: 2.3522, country: 'FR', currency: 'EUR' },
  { name: 'lyon', lat: 45.764, lng: 4.8357, country: 'FR', currency: 'EUR' },
  { name: 'berlin', lat: 52.52, lng: 13.405, country: 'DE', currency: 'EUR' },
  { name: 'munich', lat: 48.1351, lng: 11.582, country: 'DE', currency: 'EUR' },
  { name: 'madrid', lat: 40.4168, lng: -3.7038, country: 'ES', currency: 'EUR' },
  { name: 'rome', lat: 41.9028, lng: 12.4964, country: 'IT', currency: 'EUR' },
  { name: 'amsterdam', lat: 52.3676, lng: 4.9041, country: 'NL', currency: 'EUR' },
  { name: 'lisbon', lat: 38.7223, lng: -9.1393, country: 'PT', currency: 'EUR' },
  { name: 'london', lat: 51.5074, lng: -0.1278, country: 'GB', currency: 'GBP' },
  { name: 'manchester', lat: 53.4808, lng: -2.2426, country: 'GB', currency: 'GBP' },
  { name: 'zurich', lat: 47.3769, lng: 8.5417, country: 'CH', currency: 'CHF' },
  { name: 'stockholm', lat: 59.3293, lng: 18.0686, country: 'SE', currency: 'SEK' },
  { name: 'warsaw', lat: 52.2297, lng: 21.0122, country: 'PL', currency: 'PLN' },
  { name: 'new-york', lat: 40.7128, lng: -74.006, country: 'US', currency: 'USD' },
  { name: 'chicago', lat: 41.8781, lng: -87.6298, country: 'US', currency: 'USD' },
  { name: 'san-francisco', lat: 37.7749, lng: -122.4194, country: 'US', currency: 'USD' },
  { name: 'toronto', lat: 43.6532, lng: -79.3832, country: 'CA', currency: 'CAD' },
  { name: 'mexico-city', lat: 19.4326, lng: -99.1332, country: 'MX', currency: 'MXN' },
  { name: 'sao-paulo', lat: -23.5505, lng: -46.6333, country: 'BR', currency: 'BRL' },
  { name: 'tokyo', lat: 35.6762, lng: 139.6503, country: 'JP', currency: 'JPY' },
  { name: 'singapore', lat: 1.3521, lng: 103.8198, country: 'SG', currency: 'SGD' },
  { name: 'sydney', lat: -33.8688, lng: 151.2093, country: 'AU', currency: 'AUD' },
  { name: 'mumbai', lat: 19.076, lng: 72.8777, country: 'IN', currency: 'INR' },
  { name: 'dubai', lat: 25.2048, lng: 55.2708, country: 'AE', currency: 'AED' },
  { name: 'johannesburg', lat: -26.2041, lng: 28.0473, country: 'ZA', currency: 'ZAR' },
  { name: 'lagos', lat: 6.5244, lng: 3.3792, country: 'NG', currency: 'NGN' },
];

/** Where online shops are registered: a card-not-present purchase carries these coordinates, wherever the cardholder is. */
const ONLINE_HQ: City[] = [
  { name: 'dublin', lat: 53.3498, lng: -6.2603, country: 'IE', currency: 'EUR' },
  { name: 'luxembourg', lat: 49.6116, lng: 6.1319, country: 'LU', currency: 'EUR' },
  { name: 'seattle', lat: 47.6062, lng: -122.3321, country: 'US', currency: 'USD' },
];

/** Relative purchase rate per hour of the day (local time is taken as UTC: the generator's world is one time zone). */
const HOUR_WEIGHTS = [0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.2, 1.3, 1.4, 1.6, 2.2, 2.0, 1.4, 1.3, 1.4, 1.7, 2.1, 2.0, 1.6, 1.1, 0.7, 0.4];
const CATEGORIES = ['grocery', 'cafe', 'restaurant', 'fuel', 'pharmacy', 'clothing', 'electronics', 'transport', 'books', 'online'];
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Cruising speed used for legitimate flights (km/h), plus time at airports. */
const FLIGHT_KMH = 750;
const AIRPORT_MS = 3 * HOUR;

interface Account {
  id: string;
  home: City;
  median: number;
  sigma: number;
  favourites: string[];
  weight: number;
  trip?: { city: City; depart: number; back: number; flightMs: number };
}

interface Draft {
  tx: Omit<Transaction, 'id'>;
  /** When it reaches the input (= ts unless late). */
  arrival: number;
  incident?: number;
  late?: boolean;
}

const round2 = (x: number) => Math.round(x * 100) / 100;
const round5 = (x: number) => Math.round(x * 1e5) / 1e5;

const kmBetween = (a: City, b: City) => distanceKm(a.lat, a.lng, b.lat, b.lng);

/** Check options; throws a RangeError naming the option. */
export function resolveGeneratorOptions(opts: Partial<GeneratorOptions>): GeneratorOptions {
  const o = { ...GENERATOR_DEFAULTS, ...opts };
  const int = (name: keyof GeneratorOptions, min: number, max: number) => {
    const v = o[name];
    if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${name}: expected an integer from ${min} to ${max}, received ${v}`);
  };
  int('accounts', 1, 10_000_000);
  int('tx', 1, 100_000_000);
  int('seed', 0, 2 ** 32 - 1);
  int('days', 1, 3650);
  int('start', 0, 8.64e15);
  for (const name of ['fraudRate', 'lateRate', 'onlineAbroadRate'] as const) {
    if (!Number.isFinite(o[name]) || o[name] < 0 || o[name] > 1) throw new RangeError(`${name}: expected a number from 0 to 1, received ${o[name]}`);
  }
  if (o.tx < o.accounts * 2) throw new RangeError(`tx: expected at least 2 transactions per account (${o.accounts * 2}), received ${o.tx}`);
  return o;
}

export function generate(options: Partial<GeneratorOptions> = {}): GeneratedData {
  const o = resolveGeneratorOptions(options);
  const rnd = new Random(o.seed);
  const span = o.days * DAY;
  const width = String(o.accounts).length;

  const accounts: Account[] = Array.from({ length: o.accounts }, (_, i) => {
    const home = rnd.pick(CITIES);
    const account: Account = {
      id: `acct-${String(i + 1).padStart(width, '0')}`,
      home,
      median: Math.exp(rnd.uniform(Math.log(8), Math.log(120))),
      sigma: rnd.uniform(0.35, 0.8),
      favourites: Array.from({ length: rnd.int(4, 12) }, () => `${rnd.pick(CATEGORIES)}-${home.name}-${rnd.int(1, 400)}`),
      weight: rnd.logNormal(1, 0.5),
    };
    if (rnd.chance(0.15) && o.days >= 4) {
      let city = rnd.pick(CITIES);
      while (city === home) city = rnd.pick(CITIES);
      const flightMs = (kmBetween(home, city) / FLIGHT_KMH) * HOUR + AIRPORT_MS;
      const depart = o.start + rnd.uniform(0.1, 0.7) * span;
      account.trip = { city, depart, back: Math.min(depart + rnd.uniform(2, 7) * DAY, o.start + span - flightMs - HOUR), flightMs };
    }
    return account;
  });

  /** Where the account is at `ts` (undefined while flying), as a point near a city. */
  const cityAt = (a: Account, ts: number): City | undefined => {
    const t = a.trip;
    if (!t || ts < t.depart) return a.home;
    if (ts < t.depart + t.flightMs) return undefined;
    if (ts < t.back) return t.city;
    if (ts < t.back + t.flightMs) return undefined;
    return a.home;
  };
  const near = (c: City, km: number) => ({ lat: round5(c.lat + (rnd.normal() * km) / 111), lng: round5(c.lng + (rnd.normal() * km) / (111 * Math.max(0.2, Math.cos((c.lat * Math.PI) / 180)))) });
  const purchase = (a: Account, ts: number, c: City, amount: number, merchant: string): Omit<Transaction, 'id'> => ({
    accountId: a.id,
    amount: round2(Math.max(0.5, amount)),
    currency: a.home.currency,
    ts: Math.round(ts),
    ...near(c, 6),
    merchant,
    country: c.country,
  });
  const normalAmount = (a: Account) => (rnd.chance(0.004) ? a.median * rnd.uniform(3, 6) : rnd.logNormal(a.median, a.sigma));
  const merchantFor = (a: Account, c: City) => (c === a.home && rnd.chance(0.7) ? rnd.pick(a.favourites) : `${rnd.pick(CATEGORIES)}-${c.name}-${rnd.int(1, 400)}`);

  // Fraud incidents first (their size is known), then normal purchases fill up to `tx`.
  const drafts: Draft[] = [];
  const incidents: { pattern: FraudPattern; account: Account; drafts: Draft[] }[] = [];
  const fraudulent = Math.min(o.accounts, Math.round(o.accounts * o.fraudRate));
  const order = Array.from({ length: o.accounts }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rnd.int(0, i);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const chosen = order.slice(0, fraudulent).map((i, n) => {
    const pattern = FRAUD_PATTERNS[n % FRAUD_PATTERNS.length]!;
    const size = pattern === 'velocity' ? rnd.int(7, 20) : pattern === 'card-testing' ? rnd.int(2, 8) + 1 : 1;
    return { account: accounts[i]!, pattern, size };
  });

  // Normal purchases per account, in proportion to its weight.
  const totalWeight = accounts.reduce((s, a) => s + a.weight, 0);
  const normalBudget = Math.max(o.accounts * 2, o.tx - chosen.reduce((s, c) => s + c.size, 0));
  const counts = accounts.map((a) => Math.max(2, Math.floor((a.weight / totalWeight) * normalBudget)));
  for (let k = 0, left = normalBudget - counts.reduce((s, c) => s + c, 0); left > 0; k++, left--) counts[k % o.accounts]!++;

  const normalTimes = (n: number) => {
    const out: number[] = [];
    for (let k = 0; k < n; k++) out.push(o.start + rnd.int(0, o.days - 1) * DAY + rnd.weighted(HOUR_WEIGHTS) * HOUR + rnd.uniform(0, HOUR));
    return out.sort((x, y) => x - y);
  };
  const byAccount = new Map<Account, Draft[]>();
  accounts.forEach((a, i) => {
    const list: Draft[] = [];
    for (let ts of normalTimes(counts[i]!)) {
      let c = cityAt(a, ts);
      if (!c) {
        // In the air: the purchase happens after landing instead.
        const t = a.trip!;
        ts = (ts < t.back ? t.depart : t.back) + t.flightMs + rnd.uniform(0, 2 * HOUR);
        c = cityAt(a, ts)!;
      }
      if (rnd.chance(o.onlineAbroadRate)) {
        const hq = rnd.pick(ONLINE_HQ);
        list.push({ tx: purchase(a, ts, hq, normalAmount(a), `online-${hq.name}-${rnd.int(1, 40)}`), arrival: ts });
      } else {
        list.push({ tx: purchase(a, ts, c, normalAmount(a), merchantFor(a, c)), arrival: ts });
      }
    }
    list.sort((x, y) => x.tx.ts - y.tx.ts);
    // Some accounts have a legitimate burst: a shopping trip, transit taps, a basket paid in parts.
    if (list.length > 12 && rnd.chance(0.12)) {
      const k = rnd.int(3, 9);
      const i = rnd.int(0, list.length - k);
      const anchor = list[i]!.tx;
      const over = rnd.uniform(4, 20) * MINUTE;
      for (let j = 0; j < k; j++) {
        const ts = Math.round(anchor.ts + (over * j) / (k - 1));
        list[i + j] = { tx: { ...list[i + j]!.tx, ts, lat: anchor.lat, lng: anchor.lng, country: anchor.country, merchant: anchor.merchant }, arrival: ts };
      }
      list.sort((x, y) => x.tx.ts - y.tx.ts);
    }
    byAccount.set(a, list);
  });

  /** A moment at home, away from trips, in the second half of the account's history (so it has history). */
  const homeMoment = (a: Account): number => {
    const list = byAccount.get(a)!;
    for (let attempt = 0; attempt < 50; attempt++) {
      const anchor = list[rnd.int(Math.floor(list.length / 2), list.length - 1)]!;
      const ts = anchor.tx.ts;
      const t = a.trip;
      if (!t || ts < t.depart - DAY || ts > t.back + t.flightMs + DAY) return ts;
    }
    return list[list.length - 1]!.tx.ts;
  };

  for (const { account: a, pattern, size } of chosen) {
    const own: Draft[] = [];
    const add = (tx: Omit<Transaction, 'id'>) => own.push({ tx, arrival: tx.ts, incident: incidents.length });
    const home = a.home;
    if (pattern === 'velocity') {
      const start = homeMoment(a) + rnd.uniform(5, 60) * MINUTE;
      const over = rnd.uniform(3, 12) * MINUTE;
      const merchant = `online-${rnd.int(1, 60)}`;
      for (let k = 0; k < size; k++) add(purchase(a, start + (over * k) / (size - 1), home, a.median * rnd.uniform(0.5, 2), merchant));
    } else if (pattern === 'amount-spike') {
      const ts = homeMoment(a) + rnd.uniform(30, 300) * MINUTE;
      add(purchase(a, ts, home, a.median * Math.exp(rnd.uniform(Math.log(6), Math.log(150))), `${rnd.pick(['electronics', 'jewellery'])}-${home.name}-${rnd.int(1, 400)}`));
    } else if (pattern === 'impossible-travel') {
      let far = rnd.pick(CITIES);
      while (kmBetween(home, far) < 500) far = rnd.pick(CITIES);
      const ts = homeMoment(a) + rnd.uniform(10, 240) * MINUTE;
      add(purchase(a, ts, far, rnd.logNormal(a.median, a.sigma), `${rnd.pick(CATEGORIES)}-${far.name}-${rnd.int(1, 400)}`));
    } else {
      let ts = homeMoment(a) + rnd.uniform(10, 120) * MINUTE;
      const merchant = `online-${rnd.int(1, 60)}`;
      for (let k = 0; k < size - 1; k++) {
        add(purchase(a, ts, home, rnd.uniform(0.5, 1.99), merchant));
        ts += rnd.uniform(0.5, 2.5) * MINUTE;
      }
      add(purchase(a, ts + rnd.uniform(0, 3) * MINUTE, home, rnd.uniform(80, 1500), `${rnd.pick(['electronics', 'jewellery', 'online'])}-${rnd.int(1, 60)}`));
    }
    incidents.push({ pattern, account: a, drafts: own });
    byAccount.get(a)!.push(...own);
  }

  for (const list of byAccount.values()) {
    for (const d of list) {
      if (d.incident === undefined && rnd.chance(o.lateRate)) {
        d.late = true;
        d.arrival = d.tx.ts + rnd.uniform(6, 48) * HOUR;
      }
      drafts.push(d);
    }
  }

  // Ids follow event time, so they read naturally; the input is in arrival order.
  drafts.sort((x, y) => x.tx.ts - y.tx.ts || (x.tx.accountId < y.tx.accountId ? -1 : x.tx.accountId > y.tx.accountId ? 1 : 0));
  const idWidth = String(drafts.length).length;
  const ids = new Map<Draft, string>();
  drafts.forEach((d, i) => ids.set(d, `tx-${String(i + 1).padStart(idWidth, '0')}`));
  const arrivalOrder = drafts.map((d, i) => ({ d, i })).sort((x, y) => x.d.arrival - y.d.arrival || x.i - y.i);

  return {
    transactions: arrivalOrder.map(({ d }) => ({ id: ids.get(d)!, ...d.tx })),
    incidents: incidents.map((inc, i) => {
      const txs = inc.drafts.map((d) => d.tx.ts);
      return {
        incident: `inc-${String(i + 1).padStart(String(incidents.length).length, '0')}`,
        pattern: inc.pattern,
        accountId: inc.account.id,
        txIds: inc.drafts.map((d) => ids.get(d)!),
        start: Math.min(...txs),
        end: Math.max(...txs),
      };
    }),
    late: drafts.filter((d) => d.late).map((d) => ids.get(d)!),
  };
}
