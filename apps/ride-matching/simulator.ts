import { mulberry32 } from '../lib/random';
import { readEvents } from './event-stream';
import { along, CITY, distanceKm, round6, type BoundingBox, type LatLng } from './geo';

/**
 * The simulator: a client of the service's HTTP API, nothing more. N drivers
 * cruise around the city and report their location; riders request rides at
 * a rate (Poisson arrivals); drivers answer offers after a random delay —
 * mostly accepting, sometimes declining, sometimes letting the offer lapse —
 * then drive to the pickup, start the ride, drive to the dropoff and
 * complete it. A few riders cancel while waiting, a few drivers take a break
 * (offline). It learns about offers and matches from the server-sent events
 * (GET /events), as a driver app would from push notifications.
 */
export interface SimulatorOptions {
  /** The service, e.g. http://127.0.0.1:3000 */
  url: string;
  apiKey?: string;
  /** @default 40 */
  drivers: number;
  /** Ride requests per second (Poisson). @default 1 */
  rate: number;
  /** An offer is answered after a delay uniform in [acceptMinMs, acceptMaxMs]. @default 300, 2500 */
  acceptMinMs: number;
  acceptMaxMs: number;
  /** Share of offers declined. @default 0.15 */
  declineRate: number;
  /** Share of offers left to lapse (the offer timeout). @default 0.05 */
  ignoreRate: number;
  /** Share of riders who cancel while waiting. @default 0.03 */
  cancelRate: number;
  /** Driving speed, km per second of wall time (a time-lapse city). @default 0.25 */
  speedKmPerS: number;
  /** Location updates, per driver, this often while moving. @default 1000 */
  tickMs: number;
  /** Seed of the random choices. @default 1 */
  seed: number;
  /** Driver and rider ids start with this. @default 'sim' */
  prefix: string;
  box: BoundingBox;
  /** A progress line every 5 s (none when not given). */
  onLine?: (line: string) => void;
}

export const SIMULATOR_DEFAULTS: Omit<SimulatorOptions, 'url'> = {
  drivers: 40,
  rate: 1,
  acceptMinMs: 300,
  acceptMaxMs: 2_500,
  declineRate: 0.15,
  ignoreRate: 0.05,
  cancelRate: 0.03,
  speedKmPerS: 0.25,
  tickMs: 1_000,
  seed: 1,
  prefix: 'sim',
  box: CITY,
};

type Mode = 'cruise' | 'to-pickup' | 'to-dropoff' | 'break';

interface SimDriver {
  id: string;
  pos: LatLng;
  target: LatLng;
  mode: Mode;
  rideId: string | null;
  dropoff: LatLng | null;
  /** Offer being answered (ride id). */
  answering: string | null;
  breakUntil: number;
  busy: boolean;
}

export interface SimulatorStats {
  requested: number;
  matched: number;
  completed: number;
  expired: number;
  cancelled: number;
  accepted: number;
  declined: number;
  ignored: number;
  /** 409 answers: an accept that lost a race with a timeout or a cancel (expected now and then). */
  conflicts: number;
  /** Other failed requests. */
  errors: number;
  lastError: string | null;
}

/** Sleep `ms`, or less if `signal` aborts; the abort listener is removed either way (the signal lives long). */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const onAbort = () => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export class Simulator {
  readonly stats: SimulatorStats = { requested: 0, matched: 0, completed: 0, expired: 0, cancelled: 0, accepted: 0, declined: 0, ignored: 0, conflicts: 0, errors: 0, lastError: null };
  private readonly o: SimulatorOptions;
  private readonly random: () => number;
  private readonly drivers = new Map<string, SimDriver>();
  private readonly myRides = new Set<string>();
  private readonly abort = new AbortController();
  private readonly timers = new Set<NodeJS.Timeout>();
  private loops: Promise<unknown>[] = [];
  private riders = 0;

  constructor(options: Partial<SimulatorOptions> & { url: string }) {
    this.o = { ...SIMULATOR_DEFAULTS, ...options };
    this.random = mulberry32(this.o.seed);
  }

  /** Put the drivers online, then run until stop(). */
  async start(): Promise<void> {
    const { box, drivers, prefix } = this.o;
    for (let i = 0; i < drivers; i++) {
      const id = `${prefix}-d${String(i + 1).padStart(3, '0')}`;
      const pos = this.randomPoint(box);
      this.drivers.set(id, { id, pos, target: this.randomPoint(box), mode: 'cruise', rideId: null, dropoff: null, answering: null, breakUntil: 0, busy: false });
    }
    this.loops.push(this.listen());
    await this.forEachLimited([...this.drivers.values()], 16, async (d) => {
      await this.settleLeftovers(d);
      await this.post(`/drivers/${d.id}/online`, d.pos);
    });
    this.loops.push(this.driveLoop(), this.riderLoop());
    if (this.o.onLine) this.loops.push(this.reportLoop());
  }

  async stop(): Promise<void> {
    this.abort.abort();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled(this.loops);
  }

  // ---- HTTP -----------------------------------------------------------------

  private async request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.o.apiKey) headers.authorization = `Bearer ${this.o.apiKey}`;
    const res = await fetch(this.o.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: this.abort.signal });
    const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    return { status: res.status, json };
  }

  /** POST; failures are counted (409 apart: a lost race is part of the game), never thrown. */
  private async post(path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> } | undefined> {
    try {
      const r = await this.request('POST', path, body);
      if (r.status === 409) this.stats.conflicts++;
      else if (r.status >= 400) this.countError(`POST ${path}: ${r.status} ${String(r.json.message ?? '')}`);
      return r;
    } catch (err) {
      if (!this.abort.signal.aborted) this.countError(`POST ${path}: ${(err as Error).message}`);
      return undefined;
    }
  }

  private countError(message: string): void {
    this.stats.errors++;
    this.stats.lastError = message;
  }

  /** A driver left on a trip or with an offer by an earlier run (a kept namespace): finish that first. */
  private async settleLeftovers(d: SimDriver): Promise<void> {
    const r = await this.request('GET', `/drivers/${d.id}`).catch(() => undefined);
    if (!r || r.status !== 200) return;
    const offer = r.json.offer as { rideId: string } | null;
    const rideId = r.json.rideId as string | null;
    if (offer) await this.post(`/drivers/${d.id}/decline`, { rideId: offer.rideId });
    if (rideId) {
      for (const step of ['complete', 'start', 'complete', 'cancel']) {
        const res = await this.request('POST', `/rides/${rideId}/${step}`).catch(() => undefined);
        if (res?.status === 200 && (step === 'complete' || step === 'cancel')) break;
      }
    }
  }

  private async forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(limit, items.length) }, async () => {
        while (next < items.length && !this.abort.signal.aborted) await fn(items[next++]!);
      }),
    );
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.abort.signal.aborted) fn();
    }, ms);
    this.timers.add(t);
  }

  // ---- the world -------------------------------------------------------------

  private randomPoint(box: BoundingBox): LatLng {
    return round6({ lat: box.south + this.random() * (box.north - box.south), lng: box.west + this.random() * (box.east - box.west) });
  }

  /** A dropoff 1 to 5 km from the pickup, inside the box. */
  private dropoffFor(pickup: LatLng): LatLng {
    for (;;) {
      const p = this.randomPoint(this.o.box);
      const km = distanceKm(pickup, p);
      if (km >= 1 && km <= 5) return p;
    }
  }

  private async driveLoop(): Promise<void> {
    const signal = this.abort.signal;
    let last = Date.now();
    let reporting: Promise<void> | undefined;
    while (!signal.aborted) {
      await sleep(this.o.tickMs, signal);
      const now = Date.now();
      const stepKm = (this.o.speedKmPerS * (now - last)) / 1000;
      last = now;
      const moved: SimDriver[] = [];
      for (const d of this.drivers.values()) {
        if (d.busy) continue;
        if (d.mode === 'break') {
          if (now >= d.breakUntil) this.endBreak(d);
          continue;
        }
        const km = distanceKm(d.pos, d.target);
        if (km <= stepKm) {
          d.pos = d.target;
          this.arrived(d);
        } else {
          d.pos = round6(along(d.pos, d.target, stepKm / km));
        }
        moved.push(d);
        // Now and then a driver with nothing to do takes a break.
        if (d.mode === 'cruise' && !d.answering && this.random() < 0.002 * (this.o.tickMs / 1000)) this.startBreak(d, now);
      }
      // One batch of reports at a time: a service slower than the tick gets the next positions later,
      // never a growing pile of requests (nor a driver's two reports racing each other).
      reporting ??= this.forEachLimited(moved, 16, async (d) => {
        if (d.mode !== 'break') await this.post(`/drivers/${d.id}/location`, d.pos);
      }).finally(() => {
        reporting = undefined;
      });
    }
    await reporting;
  }

  private arrived(d: SimDriver): void {
    if (d.mode === 'cruise') {
      d.target = this.randomPoint(this.o.box);
    } else if (d.mode === 'to-pickup') {
      const rideId = d.rideId!;
      d.busy = true;
      void this.post(`/rides/${rideId}/start`).then((r) => {
        d.busy = false;
        if (r?.status === 200 && d.rideId === rideId) {
          d.mode = 'to-dropoff';
          d.target = d.dropoff!;
        } else if (d.rideId === rideId) this.cruise(d);
      });
    } else if (d.mode === 'to-dropoff') {
      const rideId = d.rideId!;
      d.busy = true;
      void this.post(`/rides/${rideId}/complete`).then(() => {
        d.busy = false;
        if (d.rideId === rideId) this.cruise(d);
      });
    }
  }

  private cruise(d: SimDriver): void {
    d.mode = 'cruise';
    d.rideId = null;
    d.dropoff = null;
    d.target = this.randomPoint(this.o.box);
  }

  private startBreak(d: SimDriver, now: number): void {
    d.mode = 'break';
    d.breakUntil = now + 5_000 + this.random() * 10_000;
    void this.post(`/drivers/${d.id}/offline`);
  }

  private endBreak(d: SimDriver): void {
    this.cruise(d);
    void this.post(`/drivers/${d.id}/online`, d.pos);
  }

  private async riderLoop(): Promise<void> {
    const signal = this.abort.signal;
    const stepMs = 100;
    while (!signal.aborted) {
      await sleep(stepMs, signal);
      // Poisson arrivals: each step has `rate * step` expected requests.
      let expected = (this.o.rate * stepMs) / 1000;
      while (expected > 0 && !signal.aborted) {
        if (this.random() < Math.min(1, expected)) void this.requestRide();
        expected -= 1;
      }
    }
  }

  private async requestRide(): Promise<void> {
    const pickup = this.randomPoint(this.o.box);
    const riderId = `${this.o.prefix}-r${++this.riders}`;
    const r = await this.post('/rides', { riderId, pickup, dropoff: this.dropoffFor(pickup) });
    if (r?.status !== 202) return;
    this.stats.requested++;
    const rideId = r.json.rideId as string;
    this.myRides.add(rideId);
    if (this.random() < this.o.cancelRate) {
      // Impatient: cancels after a few seconds unless a driver is already on the way.
      this.later(2_000 + this.random() * 6_000, () => {
        if (this.myRides.has(rideId) && ![...this.drivers.values()].some((d) => d.rideId === rideId)) void this.post(`/rides/${rideId}/cancel`);
      });
    }
  }

  // ---- what the service tells us ---------------------------------------------

  private async listen(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        await readEvents(`${this.o.url}/events`, signal, (event, data) => {
          if (event === 'output') this.onOutput(data as { type: string; key: string; event: Record<string, unknown> & { type: string } });
        });
      } catch (err) {
        if (signal.aborted) return;
        this.countError(`events stream: ${(err as Error).message}`);
      }
      await sleep(500, signal);
    }
  }

  private onOutput(o: { type: string; key: string; event: Record<string, unknown> & { type: string } }): void {
    const e = o.event;
    if (o.type === 'driver' && e.type === 'driver.offered') {
      const d = this.drivers.get(o.key);
      if (d && d.answering === null) this.answerOffer(d, e.rideId as string);
      return;
    }
    if (o.type !== 'ride') return;
    const mine = this.myRides.has(o.key);
    switch (e.type) {
      case 'ride.matched': {
        if (mine) this.stats.matched++;
        const d = this.drivers.get(e.driverId as string);
        if (d) {
          d.mode = 'to-pickup';
          d.rideId = o.key;
          d.target = e.pickup as LatLng;
          d.dropoff = e.dropoff as LatLng;
        }
        return;
      }
      case 'ride.completed':
      case 'ride.cancelled':
      case 'ride.expired': {
        if (mine) {
          this.myRides.delete(o.key);
          this.stats[e.type === 'ride.completed' ? 'completed' : e.type === 'ride.cancelled' ? 'cancelled' : 'expired']++;
        }
        const d = e.driverId ? this.drivers.get(e.driverId as string) : undefined;
        if (d && d.rideId === o.key && e.type !== 'ride.completed') this.cruise(d);
        return;
      }
    }
  }

  private answerOffer(d: SimDriver, rideId: string): void {
    d.answering = rideId;
    const roll = this.random();
    const delay = this.o.acceptMinMs + this.random() * (this.o.acceptMaxMs - this.o.acceptMinMs);
    if (roll < this.o.ignoreRate) {
      // Lets it lapse: the driver's offer timer frees it.
      this.stats.ignored++;
      this.later(delay, () => {
        if (d.answering === rideId) d.answering = null;
      });
      return;
    }
    const decline = roll < this.o.ignoreRate + this.o.declineRate;
    this.later(delay, () => {
      void this.post(`/drivers/${d.id}/${decline ? 'decline' : 'accept'}`, { rideId }).then((r) => {
        if (r?.status === 200) this.stats[decline ? 'declined' : 'accepted']++;
        if (d.answering === rideId) d.answering = null;
      });
    });
  }

  private async reportLoop(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      await sleep(5_000, signal);
      if (signal.aborted) return;
      const s = this.stats;
      this.o.onLine!(
        `simulator: requested ${s.requested} · matched ${s.matched} · completed ${s.completed} · expired ${s.expired} · cancelled ${s.cancelled} · ` +
          `offers accepted ${s.accepted}, declined ${s.declined}, ignored ${s.ignored} · 409s ${s.conflicts} · errors ${s.errors}${s.lastError ? ` (last: ${s.lastError})` : ''}`,
      );
    }
  }
}
