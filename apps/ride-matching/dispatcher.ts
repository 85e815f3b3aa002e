import type { Redis } from 'ioredis';
import type { ActorSystem, PositionedOutput } from '../../index';
import { distanceKm, type LatLng } from './geo';
import type { DriverStatus } from './driver-machine';
import type { RideStatus } from './ride-machine';

/**
 * The dispatcher: one reader of `system.outputs()` that keeps the service's
 * projections and does the matching.
 *
 * - Projections (idempotent writes, applied in output order): the geo index of
 *   available drivers (GEOADD/ZREM), the geo index of rides waiting for a
 *   driver, a pin per driver and per open ride (for the page), counters and
 *   the recent match times. They are written in one Lua script (FLUSH_SCRIPT)
 *   with the position of the last output applied, so after a restart it
 *   resumes right after what it wrote: the counters count every output
 *   exactly once.
 * - Matching: on `ride.matching` it runs GEOSEARCH around the pickup and
 *   sends the ride a `candidates` event whose id is derived from the output's
 *   id, so a re-read output never sends twice. On `driver.available` it
 *   pushes that driver to the nearest waiting ride the same way.
 *
 * The geo index is a projection, not the truth: a driver it lists may have
 * taken another offer meanwhile, and then refuses (the driver actor decides).
 *
 * One dispatcher per namespace writes: it holds a lease in Redis, and every
 * write is one Lua script that checks the lease first, so a second service
 * process on the same namespace stays on standby instead of counting twice.
 *
 * Nothing in the loop waits for Redis: a search runs alongside (its result is
 * filtered by the in-memory pins, which are ahead of the stored index), and
 * the position is stored only once the sends of the outputs it covers are
 * settled.
 */

export interface DriverPin {
  status: DriverStatus;
  lat: number | null;
  lng: number | null;
  rideId?: string;
}

export interface RidePin {
  status: RideStatus;
  riderId: string;
  pickup: LatLng;
  dropoff: LatLng;
  driverId?: string;
  waiting?: boolean;
}

export interface RideStats {
  requested: number;
  matched: number;
  expired: number;
  cancelled: number;
  completed: number;
  offers: number;
  refused: number;
  declined: number;
  timeout: number;
}

export const EMPTY_STATS: RideStats = { requested: 0, matched: 0, expired: 0, cancelled: 0, completed: 0, offers: 0, refused: 0, declined: 0, timeout: 0 };

/** Redis keys of the ride-matching projections of a namespace (one hash tag: one slot, so the flush script runs on a cluster too). */
export function appKeys(namespace: string) {
  const tag = `{${namespace}:rm}`;
  return {
    driversGeo: `${tag}:geo:drivers`,
    waitingGeo: `${tag}:geo:waiting`,
    drivers: `${tag}:drivers`,
    rides: `${tag}:rides`,
    stats: `${tag}:stats`,
    matchMs: `${tag}:match-ms`,
    position: `${tag}:position`,
    lease: `${tag}:dispatcher`,
  };
}

export interface DispatcherOptions {
  /** A reader of the namespace (worker: false is enough). */
  system: ActorSystem;
  /** Connection for the searches, the lease and the writes. */
  redis: Redis;
  /** Radius (km) within which a driver who becomes available is pushed to a waiting ride. */
  pushRadiusKm: number;
  /** Candidates sent per search. @default 5 */
  candidates?: number;
  /** Match times kept for p50/p99. @default 1000 */
  recentMatches?: number;
  /** Buffered projection writes are flushed at least this often (ms). @default 50 */
  flushIntervalMs?: number;
  /** Dispatcher lease TTL (ms). @default 10000 */
  leaseTtlMs?: number;
  /** Identity in the lease: unique per dispatcher (two dispatchers with one owner would both pass the fence and both write). */
  owner: string;
  /** Every output, after it was applied to the in-memory projections. */
  onOutput?: (output: PositionedOutput) => void;
  onError?: (error: Error) => void;
}

type Command = [string, ...(string | number)[]];

/** How long drivers proposed to a ride are passed over by other rides' searches (a hint, not a lock). */
const CLAIM_MS = 3_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * One write of the projections, fenced by the dispatcher lease, atomic.
 * KEYS: lease, position. ARGV: owner, lease TTL ms, position ('' = unchanged),
 * the commands as a JSON array of string arrays (all on keys of the same hash tag).
 * Returns 1, or 0 (writing nothing) when the lease is not the owner's.
 */
const FLUSH_SCRIPT = `
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
for _, c in ipairs(cjson.decode(ARGV[4])) do redis.call(unpack(c)) end
if ARGV[3] ~= '' then redis.call('set', KEYS[2], ARGV[3]) end
redis.call('pexpire', KEYS[1], ARGV[2])
return 1`;

export class Dispatcher {
  readonly drivers = new Map<string, DriverPin>();
  readonly rides = new Map<string, RidePin>();
  stats: RideStats = { ...EMPTY_STATS };
  /** Recent match times (ms), newest first. */
  matchMs: number[] = [];
  /** Whether this process holds the dispatcher lease (and so writes). */
  active = false;

  private readonly keys;
  private readonly o: Required<Omit<DispatcherOptions, 'onOutput' | 'onError'>> & Pick<DispatcherOptions, 'onOutput' | 'onError'>;
  private commands: Command[] = [];
  /** Members added to the geo indexes by commands not written yet (searches add them by hand). */
  private readonly unwritten = { drivers: new Unwritten(), waiting: new Unwritten() };
  /**
   * Drivers proposed to a ride (its candidates), so that in a burst of requests the rides spread over
   * the drivers instead of all asking the nearest few, who would refuse all but one. A hint for this
   * dispatcher's searches only: the driver actors decide.
   */
  private readonly claims = new Map<string, { rideId: string; at: number }>();
  private readonly claimsByRide = new Map<string, string[]>();
  private sends: Promise<unknown>[] = [];
  private position: string | undefined;
  private flushedPosition: string | undefined;
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private iterator: AsyncIterator<PositionedOutput> | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private lastRenew = 0;

  constructor(options: DispatcherOptions) {
    this.o = { candidates: 5, recentMatches: 1_000, flushIntervalMs: 50, leaseTtlMs: 10_000, ...options };
    this.keys = appKeys(options.system.namespace);
  }

  start(): void {
    this.running ??= this.run();
    this.timer = setInterval(() => {
      if (this.active && (this.commands.length > 0 || this.position !== this.flushedPosition || Date.now() - this.lastRenew > this.o.leaseTtlMs / 3)) {
        void this.flush().catch((err: unknown) => this.fail(err));
      }
    }, this.o.flushIntervalMs);
    this.timer.unref();
  }

  /** Stop reading, write what is buffered, give the lease up. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    await this.iterator?.return?.();
    await this.running;
    if (this.active) {
      await this.flush().catch(() => {});
      await this.o.redis.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0", 1, this.keys.lease, this.o.owner).catch(() => {});
    }
  }

  /** p50 and p99 (nearest rank) of the recent match times, in ms; null before the first match. */
  percentiles(): { p50: number | null; p99: number | null; count: number } {
    const sorted = [...this.matchMs].sort((a, b) => a - b);
    const rank = (q: number) => (sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!);
    return { p50: rank(0.5), p99: rank(0.99), count: sorted.length };
  }

  private fail(err: unknown): void {
    this.o.onError?.(err instanceof Error ? err : new Error(String(err)));
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (!(await this.acquire())) {
          await sleep(Math.min(2_000, this.o.leaseTtlMs / 2));
          continue;
        }
        await this.load();
        this.active = true;
        const from = this.position ?? 'start';
        this.iterator = this.o.system.outputs({ from })[Symbol.asyncIterator]();
        for (;;) {
          const next = await this.iterator.next();
          if (next.done || this.stopped) break;
          await this.apply(next.value);
          if (!this.active) break;
        }
      } catch (err) {
        if (this.stopped) break;
        this.fail(err);
        await sleep(1_000);
      } finally {
        await this.iterator?.return?.();
        this.iterator = undefined;
      }
      // Whatever ended the loop (a lost lease, an error): start again from what Redis holds.
      if (!this.stopped) this.active = false;
    }
  }

  private async acquire(): Promise<boolean> {
    const r = this.o.redis;
    const ok = await r.set(this.keys.lease, this.o.owner, 'PX', this.o.leaseTtlMs, 'NX');
    if (ok === 'OK') return true;
    return (await r.get(this.keys.lease)) === this.o.owner;
  }

  /** The projections and the position as Redis holds them (what the last flush wrote). */
  private async load(): Promise<void> {
    const r = this.o.redis;
    const [drivers, rides, stats, matchMs, position] = await Promise.all([
      r.hgetall(this.keys.drivers),
      r.hgetall(this.keys.rides),
      r.hgetall(this.keys.stats),
      r.lrange(this.keys.matchMs, 0, -1),
      r.get(this.keys.position),
    ]);
    this.drivers.clear();
    for (const [id, pin] of Object.entries(drivers)) this.drivers.set(id, JSON.parse(pin) as DriverPin);
    this.rides.clear();
    for (const [id, pin] of Object.entries(rides)) this.rides.set(id, JSON.parse(pin) as RidePin);
    this.stats = { ...EMPTY_STATS };
    for (const k of Object.keys(EMPTY_STATS) as (keyof RideStats)[]) this.stats[k] = Number(stats[k] ?? 0);
    this.matchMs = matchMs.map(Number);
    this.position = position ?? undefined;
    this.flushedPosition = this.position;
    this.commands = [];
    this.sends = [];
    for (const u of Object.values(this.unwritten)) u.clear();
  }

  /** Write the buffered commands and the position, fenced by the lease; sends they depend on settle first. */
  flush(): Promise<void> {
    const next = this.chain.then(async () => {
      // Taken together: the position covers exactly the outputs whose commands and sends are taken.
      const { sends, commands, position } = this;
      this.sends = [];
      this.commands = [];
      for (const u of Object.values(this.unwritten)) u.startWrite();
      const results = await Promise.allSettled(sends);
      const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
      if (failed) throw failed.reason;
      const args = JSON.stringify(commands.map((c) => c.map(String)));
      const ok = await this.o.redis.eval(FLUSH_SCRIPT, 2, this.keys.lease, this.keys.position, this.o.owner, this.o.leaseTtlMs, position ?? '', args);
      if (ok !== 1) {
        this.active = false;
        throw new Error(`the dispatcher lease ${this.keys.lease} is held by another process; standing by`);
      }
      this.flushedPosition = position;
      for (const u of Object.values(this.unwritten)) u.written();
      this.lastRenew = Date.now();
    });
    // A failed write loses the commands it took: the loop starts again from what Redis holds.
    this.chain = next.catch(() => {
      this.active = false;
    });
    return next;
  }

  private cmd(...c: Command): void {
    this.commands.push(c);
  }

  private incr(stat: keyof RideStats): void {
    this.stats[stat] += 1;
    this.cmd('hincrby', this.keys.stats, stat, 1);
  }

  private async apply(o: PositionedOutput): Promise<void> {
    const e = o.event as Record<string, unknown> & { type: string };
    if (o.type === 'driver') this.applyDriver(o, e);
    else if (o.type === 'ride') this.applyRide(o, e);
    this.position = o.position;
    if (this.commands.length >= 500) await this.flush();
    this.o.onOutput?.(o);
  }

  private applyDriver(o: PositionedOutput, e: Record<string, unknown> & { type: string }): void {
    const pin: DriverPin = { status: e.status as DriverStatus, lat: e.lat as number | null, lng: e.lng as number | null };
    if (e.status === 'offered' || e.status === 'on_trip') pin.rideId = e.rideId as string;
    const before = this.drivers.get(o.key);
    this.drivers.set(o.key, pin);
    if (e.type !== 'driver.moved') this.claims.delete(o.key);
    this.cmd('hset', this.keys.drivers, o.key, JSON.stringify(pin));
    const at = pin.lat !== null && pin.lng !== null ? { lat: pin.lat, lng: pin.lng } : undefined;
    if (pin.status === 'available' && at) {
      this.cmd('geoadd', this.keys.driversGeo, at.lng, at.lat, o.key);
      this.unwritten.drivers.add(o.key);
    } else if (before === undefined || before.status === 'available') {
      // Pins and index are written together, so only a driver whose pin said available is in the index:
      // the moves of a busy or offline driver need no ZREM each.
      this.cmd('zrem', this.keys.driversGeo, o.key);
    }
    if (e.type === 'driver.available' && at) this.track(this.pushToWaitingRide(o.key, at, `push-${o.id}`));
  }

  /** A driver became available: offer it to the nearest ride waiting within the push radius. */
  private async pushToWaitingRide(driverId: string, at: LatLng, eventId: string): Promise<void> {
    const found = (await this.o.redis.geosearch(this.keys.waitingGeo, 'FROMLONLAT', at.lng, at.lat, 'BYRADIUS', this.o.pushRadiusKm, 'km', 'ASC', 'COUNT', 5, 'WITHDIST')) as [string, string][];
    // The stored set plus the rides added since the last write; the in-memory pins say who is still waiting.
    const near = new Map(found.map(([id, km]) => [id, Number(km)]));
    for (const id of this.unwritten.waiting.ids()) {
      const pin = this.rides.get(id);
      if (!pin) continue;
      const km = distanceKm(at, pin.pickup);
      if (km <= this.o.pushRadiusKm) near.set(id, km);
    }
    const rideId = [...near].filter(([id]) => this.rides.get(id)?.waiting).sort((a, b) => a[1] - b[1])[0]?.[0];
    if (!rideId || this.drivers.get(driverId)?.status !== 'available') return;
    // Off the waiting list now, so the next driver goes to the next ride; the ride decides.
    this.setRide(rideId, { waiting: false });
    this.claim(rideId, [driverId]);
    this.cmd('zrem', this.keys.waitingGeo, rideId);
    await this.o.system.send('ride', rideId, { type: 'candidates', attempt: -1, drivers: [driverId] }, { id: eventId });
  }

  /** The nearest available drivers around a pickup, sent to the ride. */
  private async search(o: PositionedOutput, e: Record<string, unknown>): Promise<void> {
    const pickup = e.pickup as LatLng;
    const exclude = new Set(e.exclude as string[]);
    const radiusKm = e.radiusKm as number;
    // The filters (excluded, no longer available, claimed by another ride) run on the reply, on pins and
    // claims that change while it is on its way, so no COUNT can know how many of the nearest they will
    // take out: when a full reply leaves fewer than `candidates`, the search is run again for 4 times as
    // many, until the reply is not full (every indexed driver within the radius). The radius bounds it.
    let drivers: string[] = [];
    for (let count = 2 * this.o.candidates + exclude.size; ; count *= 4) {
      const found = (await this.o.redis.geosearch(this.keys.driversGeo, 'FROMLONLAT', pickup.lng, pickup.lat, 'BYRADIUS', radiusKm, 'km', 'ASC', 'COUNT', count, 'WITHDIST')) as [string, string][];
      const full = found.length === count;
      // The stored index plus the drivers added since the last write (not in it yet), by distance, as far
      // as the reply reaches; the in-memory pins (ahead of the index) say who is still available.
      const reachKm = full ? Number(found[found.length - 1]![1]) : radiusKm;
      const near = new Map(found.map(([id, km]) => [id, Number(km)]));
      for (const id of this.unwritten.drivers.ids()) {
        const pin = this.drivers.get(id);
        if (!pin || pin.lat === null || pin.lng === null) continue;
        const km = distanceKm(pickup, { lat: pin.lat, lng: pin.lng });
        if (km <= reachKm) near.set(id, km);
      }
      drivers = [...near]
        .filter(([d]) => !exclude.has(d) && this.drivers.get(d)?.status === 'available' && !this.claimedByAnother(d, o.key))
        .sort((a, b) => a[1] - b[1])
        .slice(0, this.o.candidates)
        .map(([d]) => d);
      if (!full || drivers.length >= this.o.candidates) break;
    }
    this.claim(o.key, drivers);
    await this.o.system.send('ride', o.key, { type: 'candidates', attempt: e.attempt as number, drivers }, { id: `cand-${o.id}` });
  }

  private claim(rideId: string, drivers: string[]): void {
    const at = Date.now();
    for (const d of drivers) this.claims.set(d, { rideId, at });
    this.claimsByRide.set(rideId, [...(this.claimsByRide.get(rideId) ?? []), ...drivers]);
  }

  private claimedByAnother(driverId: string, rideId: string): boolean {
    const c = this.claims.get(driverId);
    return c !== undefined && c.rideId !== rideId && c.at > Date.now() - CLAIM_MS;
  }

  /** The ride needs no more drivers: the ones proposed to it and still free go to waiting rides. */
  private releaseClaims(rideId: string, outputId: string): void {
    for (const d of this.claimsByRide.get(rideId) ?? []) {
      if (this.claims.get(d)?.rideId !== rideId) continue;
      this.claims.delete(d);
      const pin = this.drivers.get(d);
      if (pin?.status === 'available' && pin.lat !== null && pin.lng !== null) this.track(this.pushToWaitingRide(d, { lat: pin.lat, lng: pin.lng }, `push-${outputId}-${d}`));
    }
    this.claimsByRide.delete(rideId);
  }

  /** Work the position must wait for (a search and its send). */
  private track(p: Promise<unknown>): void {
    this.sends.push(p);
  }

  private setRide(id: string, change: Partial<RidePin>): void {
    const pin = this.rides.get(id);
    if (!pin) return;
    const next = { ...pin, ...change };
    if (change.driverId === undefined && 'driverId' in change) delete next.driverId;
    this.rides.set(id, next);
    this.cmd('hset', this.keys.rides, id, JSON.stringify(next));
  }

  private endRide(id: string, stat: keyof RideStats, outputId: string): void {
    this.releaseClaims(id, outputId);
    this.incr(stat);
    this.rides.delete(id);
    this.cmd('hdel', this.keys.rides, id);
    this.cmd('zrem', this.keys.waitingGeo, id);
  }

  private applyRide(o: PositionedOutput, e: Record<string, unknown> & { type: string }): void {
    const id = o.key;
    switch (e.type) {
      case 'ride.requested': {
        const pin: RidePin = { status: 'matching', riderId: e.riderId as string, pickup: e.pickup as LatLng, dropoff: e.dropoff as LatLng };
        this.rides.set(id, pin);
        this.cmd('hset', this.keys.rides, id, JSON.stringify(pin));
        this.incr('requested');
        return;
      }
      case 'ride.matching': {
        this.setRide(id, { status: 'matching', waiting: false, driverId: undefined });
        this.cmd('zrem', this.keys.waitingGeo, id);
        this.track(this.search(o, e));
        return;
      }
      case 'ride.waiting': {
        const pickup = e.pickup as LatLng;
        this.setRide(id, { waiting: true });
        this.cmd('geoadd', this.keys.waitingGeo, pickup.lng, pickup.lat, id);
        this.unwritten.waiting.add(id);
        return;
      }
      case 'ride.offered':
        this.setRide(id, { status: 'offered', waiting: false, driverId: e.driverId as string });
        this.cmd('zrem', this.keys.waitingGeo, id);
        this.incr('offers');
        return;
      case 'ride.offer.failed': {
        const outcome = e.outcome as 'refused' | 'declined' | 'timeout';
        if (outcome === 'refused' || outcome === 'declined' || outcome === 'timeout') this.incr(outcome);
        return;
      }
      case 'ride.matched': {
        this.releaseClaims(id, o.id);
        this.setRide(id, { status: 'matched', driverId: e.driverId as string });
        this.incr('matched');
        const ms = e.matchMs as number;
        this.matchMs.unshift(ms);
        this.matchMs.length = Math.min(this.matchMs.length, this.o.recentMatches);
        this.cmd('lpush', this.keys.matchMs, ms);
        this.cmd('ltrim', this.keys.matchMs, 0, this.o.recentMatches - 1);
        return;
      }
      case 'ride.started':
        this.setRide(id, { status: 'in_progress' });
        return;
      case 'ride.completed':
        return this.endRide(id, 'completed', o.id);
      case 'ride.cancelled':
        return this.endRide(id, 'cancelled', o.id);
      case 'ride.expired':
        return this.endRide(id, 'expired', o.id);
    }
  }
}

/** Ids added to a Redis set by commands not written yet, or being written. */
class Unwritten {
  private pending = new Set<string>();
  private writing = new Set<string>();

  add(id: string): void {
    this.pending.add(id);
  }

  /** The buffered commands are taken by a write. */
  startWrite(): void {
    for (const id of this.pending) this.writing.add(id);
    this.pending = new Set();
  }

  /** That write is in Redis. */
  written(): void {
    this.writing = new Set();
  }

  clear(): void {
    this.pending = new Set();
    this.writing = new Set();
  }

  ids(): string[] {
    return [...this.pending, ...this.writing];
  }
}
