import type { Redis } from 'ioredis';
import type { ActorSystem, PositionedOutput } from '../../index';
import type { LatLng } from './geo';
import type { DriverStatus } from './driver-machine';
import type { RideStatus } from './ride-machine';

/**
 * The dispatcher: one reader of `system.outputs()` that keeps the service's
 * projections and does the matching.
 *
 * - Projections (idempotent writes, applied in output order): the geo index of
 *   available drivers (GEOADD/ZREM), the geo index of rides waiting for a
 *   driver, a pin per driver and per open ride (for the page), counters and
 *   the recent match times. They are written in one MULTI with the position
 *   of the last output applied, so after a restart it resumes right after
 *   what it wrote: the counters count every output exactly once.
 * - Matching: on `ride.matching` it runs GEOSEARCH around the pickup and
 *   sends the ride a `candidates` event whose id is derived from the output's
 *   id, so a re-read output never sends twice. On `driver.available` it
 *   pushes that driver to the nearest waiting ride the same way.
 *
 * The geo index is a projection, not the truth: a driver it lists may have
 * taken another offer meanwhile, and then refuses (the driver actor decides).
 *
 * One dispatcher per namespace writes: it holds a lease in Redis, and every
 * write transaction is fenced by it (WATCH), so a second service process on
 * the same namespace stays on standby instead of counting twice.
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

/** Redis keys of the ride-matching projections of a namespace (one hash tag: one slot, so MULTI works on a cluster too). */
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
  /** Connection for reads and the lease; a second one is duplicated from it for the fenced writes. */
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
  /** Identity in the lease. */
  owner: string;
  /** Every output, after it was applied to the in-memory projections. */
  onOutput?: (output: PositionedOutput) => void;
  onError?: (error: Error) => void;
}

type Command = [string, ...(string | number)[]];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Dispatcher {
  readonly drivers = new Map<string, DriverPin>();
  readonly rides = new Map<string, RidePin>();
  stats: RideStats = { ...EMPTY_STATS };
  /** Recent match times (ms), newest first. */
  matchMs: number[] = [];
  /** Outputs applied by this process. */
  applied = 0;
  /** Whether this process holds the dispatcher lease (and so writes). */
  active = false;

  private readonly keys;
  private readonly writer: Redis;
  private readonly o: Required<Omit<DispatcherOptions, 'onOutput' | 'onError'>> & Pick<DispatcherOptions, 'onOutput' | 'onError'>;
  private commands: Command[] = [];
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
    this.writer = options.redis.duplicate();
    this.writer.on('error', () => {});
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
    this.writer.disconnect();
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
  }

  /** Write the buffered commands and the position, fenced by the lease; sends they depend on settle first. */
  flush(): Promise<void> {
    const next = this.chain.then(async () => {
      // Taken together: the position covers exactly the outputs whose commands and sends are taken.
      const { sends, commands, position } = this;
      this.sends = [];
      this.commands = [];
      const results = await Promise.allSettled(sends);
      const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
      if (failed) throw failed.reason;
      const w = this.writer;
      await w.watch(this.keys.lease);
      if ((await w.get(this.keys.lease)) !== this.o.owner) {
        await w.unwatch();
        this.active = false;
        throw new Error(`the dispatcher lease ${this.keys.lease} is held by another process; standing by`);
      }
      const tx = w.multi(commands);
      if (position !== undefined) tx.set(this.keys.position, position);
      tx.pexpire(this.keys.lease, this.o.leaseTtlMs);
      const res = await tx.exec();
      if (res === null) {
        this.active = false;
        throw new Error(`the dispatcher lease ${this.keys.lease} changed hands during a write; standing by`);
      }
      const bad = res.find(([err]) => err);
      if (bad) throw bad[0];
      this.flushedPosition = position;
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
    if (o.type === 'driver') await this.applyDriver(o, e);
    else if (o.type === 'ride') await this.applyRide(o, e);
    this.position = o.position;
    this.applied++;
    if (this.commands.length >= 500) await this.flush();
    this.o.onOutput?.(o);
  }

  private async applyDriver(o: PositionedOutput, e: Record<string, unknown> & { type: string }): Promise<void> {
    const pin: DriverPin = { status: e.status as DriverStatus, lat: e.lat as number | null, lng: e.lng as number | null };
    if (e.status === 'offered' || e.status === 'on_trip') pin.rideId = e.rideId as string;
    this.drivers.set(o.key, pin);
    this.cmd('hset', this.keys.drivers, o.key, JSON.stringify(pin));
    const located = pin.lat !== null && pin.lng !== null;
    if (pin.status === 'available' && located) this.cmd('geoadd', this.keys.driversGeo, pin.lng!, pin.lat!, o.key);
    else this.cmd('zrem', this.keys.driversGeo, o.key);
    if (e.type === 'driver.available' && located) await this.pushToWaitingRide(o, { lat: pin.lat!, lng: pin.lng! });
  }

  /** A driver became available: offer it to the nearest ride waiting within the push radius. */
  private async pushToWaitingRide(o: PositionedOutput, at: LatLng): Promise<void> {
    await this.flush();
    const found = (await this.o.redis.geosearch(this.keys.waitingGeo, 'FROMLONLAT', at.lng, at.lat, 'BYRADIUS', this.o.pushRadiusKm, 'km', 'ASC', 'COUNT', 1)) as string[];
    const rideId = found[0];
    if (!rideId) return;
    // Off the waiting list now, so the next driver goes to the next ride; the ride decides.
    this.cmd('zrem', this.keys.waitingGeo, rideId);
    this.send(rideId, { type: 'candidates', attempt: -1, drivers: [o.key] }, `push-${o.id}`);
  }

  private send(rideId: string, event: { type: string } & Record<string, unknown>, id: string): void {
    this.sends.push(this.o.system.send('ride', rideId, event, { id }));
  }

  private setRide(id: string, change: Partial<RidePin>): void {
    const pin = this.rides.get(id);
    if (!pin) return;
    const next = { ...pin, ...change };
    if (change.driverId === undefined && 'driverId' in change) delete next.driverId;
    this.rides.set(id, next);
    this.cmd('hset', this.keys.rides, id, JSON.stringify(next));
  }

  private endRide(id: string, stat: keyof RideStats): void {
    this.incr(stat);
    this.rides.delete(id);
    this.cmd('hdel', this.keys.rides, id);
    this.cmd('zrem', this.keys.waitingGeo, id);
  }

  private async applyRide(o: PositionedOutput, e: Record<string, unknown> & { type: string }): Promise<void> {
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
        await this.flush();
        const pickup = e.pickup as LatLng;
        const exclude = new Set(e.exclude as string[]);
        const found = (await this.o.redis.geosearch(
          this.keys.driversGeo,
          'FROMLONLAT',
          pickup.lng,
          pickup.lat,
          'BYRADIUS',
          e.radiusKm as number,
          'km',
          'ASC',
          'COUNT',
          this.o.candidates + exclude.size,
        )) as string[];
        const drivers = found.filter((d) => !exclude.has(d)).slice(0, this.o.candidates);
        this.send(id, { type: 'candidates', attempt: e.attempt as number, drivers }, `cand-${o.id}`);
        return;
      }
      case 'ride.waiting': {
        const pickup = e.pickup as LatLng;
        this.setRide(id, { waiting: true });
        this.cmd('geoadd', this.keys.waitingGeo, pickup.lng, pickup.lat, id);
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
        return this.endRide(id, 'completed');
      case 'ride.cancelled':
        return this.endRide(id, 'cancelled');
      case 'ride.expired':
        return this.endRide(id, 'expired');
    }
  }
}
