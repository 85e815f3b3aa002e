/**
 * The ride-matching actors and the dispatcher, in one process on real Redis:
 * the paths of a ride (accept, decline, offer timeout, refusal, no driver,
 * cancel, a late accept) and the dispatcher's exactly-once counters.
 */
import { Redis } from 'ioredis';
import type { ActorSystem } from '../../../index';
import { driver } from '../../../apps/ride-matching/driver-machine';
import { ride, type RideContext } from '../../../apps/ride-matching/ride-machine';
import { appKeys, Dispatcher } from '../../../apps/ride-matching/dispatcher';
import { redisUrl } from '../../helpers/redis';
import { systems } from '../../helpers/system';
import { sleep, until } from './service-kit';

const sys = systems();

const CENTER = { lat: 52.52, lng: 13.405 };
/** A point `km` east of the center (1° of longitude ≈ 67.8 km at this latitude). */
const east = (km: number) => ({ lat: CENTER.lat, lng: CENTER.lng + km / 67.8 });
const settings = { radiusKm: 3, offerTimeoutMs: 60_000, matchTimeoutMs: 60_000, retryMs: 60_000 };

describe('ride matching: actors + dispatcher', () => {
  let redis: Redis;
  const dispatchers: Dispatcher[] = [];

  beforeAll(() => {
    redis = new Redis(redisUrl());
  });
  afterEach(async () => {
    await Promise.all(dispatchers.splice(0).map((d) => d.stop()));
  });
  afterAll(() => redis.disconnect());

  async function setup(partitions = 2): Promise<{ system: ActorSystem; dispatcher: Dispatcher }> {
    const system = await sys.create([driver, ride], { partitions });
    const dispatcher = new Dispatcher({ system, redis, pushRadiusKm: 3, owner: 'test', flushIntervalMs: 20, onError: (e) => process.stderr.write(`dispatcher: ${e.message}\n`) });
    dispatcher.start();
    dispatchers.push(dispatcher);
    return { system, dispatcher };
  }

  const rideState = (system: ActorSystem, id: string) => system.get('ride', id);
  const driverState = (system: ActorSystem, id: string) => system.get('driver', id);
  const valueOf = (s: { value: unknown } | undefined) => String(JSON.stringify(s?.value));
  const request = (system: ActorSystem, id: string, pickup = CENTER, extra: Partial<typeof settings> = {}) =>
    system.send('ride', id, { type: 'request', riderId: `rider-${id}`, pickup, dropoff: east(5), ...settings, ...extra });

  it('offers the nearest available driver; accept → matched; start and complete free the driver', async () => {
    const { system, dispatcher } = await setup();
    await system.ask('driver', 'near', { type: 'online', ...east(0.5) });
    await system.ask('driver', 'far', { type: 'online', ...east(2) });
    await system.ask('driver', 'away', { type: 'online', ...east(10) });
    await until('index', async () => dispatcher.drivers.size, (n) => n === 3);
    await request(system, 'r1');
    const offered = await until('offer', () => driverState(system, 'near'), (s) => s?.value === 'offered');
    expect(offered?.context.offer).toMatchObject({ rideId: 'r1' });
    expect((await rideState(system, 'r1'))?.value).toEqual({ searching: 'offered' });
    await system.ask('driver', 'near', { type: 'accept', rideId: 'r1' });
    const matched = await until('match', () => rideState(system, 'r1'), (s) => s?.value === 'matched');
    expect((matched!.context as unknown as RideContext).driverId).toBe('near');
    await system.ask('ride', 'r1', { type: 'start' });
    const done = await system.ask('ride', 'r1', { type: 'complete' });
    expect(done.value).toBe('completed');
    const freed = await until('release', () => driverState(system, 'near'), (s) => s?.value === 'available');
    expect(freed?.context).toMatchObject({ rideId: null, offer: null, trips: 1 });
    await until('stats', async () => dispatcher.stats, (s) => s.completed === 1);
    expect(dispatcher.stats).toMatchObject({ requested: 1, matched: 1, completed: 1, offers: 1 });
    expect(dispatcher.rides.size).toBe(0);
    // The geo index holds available drivers only, and 'near' is back in it.
    const indexed = await until('index written', () => redis.zrange(appKeys(system.namespace).driversGeo, '0', '-1'), (ids) => ids.length === 3);
    expect(indexed.sort()).toEqual(['away', 'far', 'near']);
  });

  it('a decline and an offer timeout pass the ride to the next driver; a lapsed offer frees its driver', async () => {
    const { system } = await setup();
    await system.ask('driver', 'd1', { type: 'online', ...east(0.2) });
    await system.ask('driver', 'd2', { type: 'online', ...east(0.4) });
    await system.ask('driver', 'd3', { type: 'online', ...east(0.6) });
    await sleep(200);
    await request(system, 'r1', CENTER, { offerTimeoutMs: 600 });
    await until('offer d1', () => driverState(system, 'd1'), (s) => s?.value === 'offered');
    await system.ask('driver', 'd1', { type: 'decline', rideId: 'r1' });
    await until('offer d2', () => driverState(system, 'd2'), (s) => s?.value === 'offered');
    // d2 lets it lapse: its durable timer frees it and tells the ride.
    await until('d2 lapsed', () => driverState(system, 'd2'), (s) => s?.value === 'available', 5_000);
    await until('offer d3', () => driverState(system, 'd3'), (s) => s?.value === 'offered');
    const r = (await rideState(system, 'r1'))!.context as unknown as RideContext;
    expect(r.passed).toEqual(['d1', 'd2']);
    expect(r.offers).toBe(3);
    const d2 = await system.journal('driver', 'd2');
    expect(d2.map((e) => e.event.type)).toEqual(['online', 'offer', expect.stringMatching(/^xstate\.after\.offerTimeout\./)]);
    // An accept after the lapse is refused with a reason, and changes nothing else.
    const late = await system.ask('driver', 'd2', { type: 'accept', rideId: 'r1' }, { id: 'late-accept' });
    expect(late.value).toBe('available');
    expect(late.context.rejection).toEqual({ eventId: 'late-accept', message: expect.stringContaining('has no pending offer') });
  });

  it('one driver, two rides: the driver holds one offer; the other ride waits, and gets the driver when it is free again', async () => {
    const { system } = await setup();
    await system.ask('driver', 'solo', { type: 'online', ...east(0.1) });
    await sleep(200);
    await Promise.all([request(system, 'a'), request(system, 'b')]);
    await until('one offered', async () => [valueOf(await rideState(system, 'a')), valueOf(await rideState(system, 'b'))], (v) => v.filter((x) => x.includes('offered')).length === 1 && v.filter((x) => x.includes('waiting')).length === 1);
    const d = await until('driver offered', () => driverState(system, 'solo'), (x) => x?.value === 'offered');
    const holder = (d!.context as { offer: { rideId: string } }).offer.rideId;
    const other = holder === 'a' ? 'b' : 'a';
    // Accept: the driver becomes busy; the waiting ride stays waiting (nobody else around).
    await system.ask('driver', 'solo', { type: 'accept', rideId: holder });
    await until('matched', () => rideState(system, holder), (s) => s?.value === 'matched');
    expect(valueOf(await rideState(system, other))).toContain('waiting');
    // The trip ends: the driver becomes available and is pushed to the waiting ride.
    await system.ask('ride', holder, { type: 'start' });
    await system.ask('ride', holder, { type: 'complete' });
    await until('pushed', () => driverState(system, 'solo'), (s) => s?.value === 'offered' && (s.context as { offer: { rideId: string } }).offer.rideId === other);
  });

  it('a search passes over the nearest drivers claimed by other rides and finds a free one farther out', async () => {
    const { system, dispatcher } = await setup();
    // 16 drivers on a line east of the pickup, d01 nearest; the index written (not merged from buffered writes).
    const ids = Array.from({ length: 16 }, (_, i) => `d${String(i + 1).padStart(2, '0')}`);
    for (const [i, id] of ids.entries()) await system.ask('driver', id, { type: 'online', ...east(0.1 * (i + 1)) });
    await until('index written', () => redis.zcard(appKeys(system.namespace).driversGeo), (n) => n === ids.length);
    await until('pins', async () => dispatcher.drivers.size, (n) => n === ids.length);
    // Three rides take 5 candidates each (d01–d15, claimed for 3 s) and are offered d01, d06, d11.
    await Promise.all(['r1', 'r2', 'r3'].map((id) => request(system, id)));
    for (const d of ['d01', 'd06', 'd11']) await until(`offer ${d}`, () => driverState(system, d), (s) => s?.value === 'offered');
    // The 12 nearest still in the index are claimed: the fourth ride must get d16, not wait for the retry (60 s).
    await request(system, 'r4');
    const offered = await until('offer d16', () => driverState(system, 'd16'), (s) => s?.value === 'offered', 3_000);
    expect(offered?.context.offer).toMatchObject({ rideId: 'r4' });
    expect((await rideState(system, 'r4'))?.value).toEqual({ searching: 'offered' });
  });

  it('no driver within the radius: the ride expires at the match timeout; a cancel frees the driver holding the offer', async () => {
    const { system, dispatcher } = await setup();
    await system.ask('driver', 'far', { type: 'online', ...east(8) });
    await sleep(100);
    await request(system, 'lonely', CENTER, { matchTimeoutMs: 800, retryMs: 300 });
    const expired = await until('expired', () => rideState(system, 'lonely'), (s) => s?.value === 'expired', 6_000);
    expect((expired!.context as unknown as RideContext).endReason).toMatch(/^expired: no driver accepted within 800 ms/);
    expect((await driverState(system, 'far'))?.value).toBe('available');

    await system.ask('driver', 'near', { type: 'online', ...east(0.3) });
    await sleep(100);
    await request(system, 'fickle');
    await until('offered', () => driverState(system, 'near'), (s) => s?.value === 'offered');
    const cancelled = await system.ask('ride', 'fickle', { type: 'cancel' });
    expect(cancelled.value).toBe('cancelled');
    await until('released', () => driverState(system, 'near'), (s) => s?.value === 'available');
    await until('stats', async () => dispatcher.stats, (s) => s.expired === 1 && s.cancelled === 1);
  });

  it('an accept that crosses the cancel: the ride answers with a release, the driver ends available', async () => {
    const { system } = await setup();
    await system.ask('driver', 'd', { type: 'online', ...east(0.3) });
    await sleep(100);
    await request(system, 'r');
    await until('offered', () => driverState(system, 'd'), (s) => s?.value === 'offered');
    // Both at once: the ride is cancelled (release on its way) while the driver accepts.
    await Promise.all([system.send('ride', 'r', { type: 'cancel' }), system.send('driver', 'd', { type: 'accept', rideId: 'r' })]);
    await until('driver free', () => driverState(system, 'd'), (s) => s?.value === 'available');
    await system.drain();
    expect((await rideState(system, 'r'))?.value).toBe('cancelled');
    expect((await driverState(system, 'd'))?.value).toBe('available');
  });

  it('refuses ride commands out of order, with the reason', async () => {
    const { system } = await setup();
    await request(system, 'x');
    const s = await system.ask('ride', 'x', { type: 'complete' }, { id: 'c1' });
    expect(s.context.rejection).toEqual({ eventId: 'c1', message: 'ride x is searching for a driver; only a started (in_progress) ride can be completed' });
    const t = await system.ask('ride', 'x', { type: 'start' }, { id: 's1' });
    expect(t.context.rejection).toEqual({ eventId: 's1', message: 'ride x is searching for a driver; only a matched ride can be started' });
  });

  it('the dispatcher resumes from its stored position: a restart counts nothing twice', async () => {
    const { system, dispatcher } = await setup();
    await system.ask('driver', 'd', { type: 'online', ...east(0.3) });
    await request(system, 'r1', CENTER, { matchTimeoutMs: 60_000 });
    await request(system, 'r2', east(20), { matchTimeoutMs: 500, retryMs: 200 });
    await until('r2 expired', async () => dispatcher.stats, (s) => s.expired === 1 && s.offers === 1);
    await dispatcher.stop();
    dispatchers.splice(dispatchers.indexOf(dispatcher), 1);
    const keys = appKeys(system.namespace);
    const stored = await redis.hgetall(keys.stats);
    expect(stored).toMatchObject({ requested: '2', expired: '1', offers: '1' });

    // Meanwhile: the offer is accepted; a second dispatcher resumes and sees only what is new.
    await system.ask('driver', 'd', { type: 'accept', rideId: 'r1' });
    const again = new Dispatcher({ system, redis, pushRadiusKm: 3, owner: 'test-2', flushIntervalMs: 20 });
    dispatchers.push(again);
    again.start();
    await until('matched counted', async () => again.stats, (s) => s.matched === 1);
    await sleep(300);
    expect(again.stats).toMatchObject({ requested: 2, expired: 1, offers: 1, matched: 1 });
    expect(await redis.hgetall(keys.stats)).toMatchObject({ requested: '2', expired: '1', offers: '1', matched: '1' });
    expect(again.rides.get('r1')).toMatchObject({ status: 'matched', driverId: 'd' });
  });
});
