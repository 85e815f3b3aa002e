/**
 * The ride-matching HTTP API, end to end over real HTTP: the service with a
 * real worker process, on a private namespace. Every endpoint, the paths of a
 * ride, idempotency, the API key, and bad input: a 4xx whose message says
 * what was wrong, with nothing written (the namespace's fingerprint in Redis
 * is unchanged). The rate limit goes last: it spends the client's budget.
 */
import { client, fingerprint, followEvents, startServiceProcess, until, type Answer, type ServiceProcess } from './service-kit';

const KEY = 'test-api-key';
const RATE_LIMIT = 400;
const CENTER = { lat: 52.52, lng: 13.405 };
const near = (km: number) => ({ lat: CENTER.lat, lng: CENTER.lng + km / 67.8 });

describe('ride-matching HTTP API', () => {
  let service: ServiceProcess;
  let api: ReturnType<typeof client>;
  let anonymous: ReturnType<typeof client>;

  beforeAll(async () => {
    service = await startServiceProcess({
      apiKey: KEY,
      bodyLimit: 1_024,
      rateLimit: RATE_LIMIT,
      askTimeoutMs: 20_000,
      radiusKm: 3,
      offerTimeoutMs: 60_000,
      matchTimeoutMs: 60_000,
      matchRetryMs: 500,
    });
    api = client(service.url, { authorization: `Bearer ${KEY}` });
    anonymous = client(service.url);
  }, 90_000);
  afterAll(async () => service?.stop());

  const ok = (a: Answer, status: number) => {
    if (a.status !== status) throw new Error(`expected ${status}, got ${a.status}: ${JSON.stringify(a.json)}`);
    return a.json;
  };
  const driver = async (id: string) => (await api('GET', `/drivers/${id}`)).json;
  const ride = async (id: string) => (await api('GET', `/rides/${id}`)).json;
  const requestRide = async (riderId: string, pickup = CENTER, headers: Record<string, string> = {}) =>
    ok(await api('POST', '/rides', { riderId, pickup, dropoff: near(4) }, headers), 202).rideId as string;

  it('drivers: online, location, GET, offline; reads need no key', async () => {
    const online = ok(await api('POST', '/drivers/dr-1/online', near(20)), 200);
    expect(online).toMatchObject({ driverId: 'dr-1', status: 'available', location: near(20), offer: null, rideId: null, seq: 1 });
    const moved = ok(await api('POST', '/drivers/dr-1/location', near(21)), 202);
    expect(moved).toMatchObject({ driverId: 'dr-1', status: 'queued', eventId: expect.any(String) });
    const seen = await until('location applied', () => anonymous('GET', '/drivers/dr-1'), (a) => a.status === 200 && (a.json.location as { lng: number }).lng === near(21).lng);
    expect(seen.json).toMatchObject({ status: 'available', seq: 2 });
    expect(ok(await api('POST', '/drivers/dr-1/offline'), 200)).toMatchObject({ status: 'offline' });
    // Offline twice is fine; online again is available.
    expect(ok(await api('POST', '/drivers/dr-1/offline', {}), 200)).toMatchObject({ status: 'offline' });
    expect(ok(await api('POST', '/drivers/dr-1/online', near(20)), 200)).toMatchObject({ status: 'available' });
  });

  it('a ride: request → offer to the nearest driver → accept → start → complete, seen in /events and /dashboard', async () => {
    const events = followEvents(service.url);
    try {
      await events.waitFor('hello', (e) => e.event === 'hello');
      ok(await api('POST', '/drivers/near-1/online', near(0.5)), 200);
      ok(await api('POST', '/drivers/far-1/online', near(2.5)), 200);
      const rideId = await requestRide('rider-1');
      expect(rideId).toMatch(/^r-[0-9a-f-]{36}$/);
      const offered = await until('offer', () => driver('near-1'), (d) => d.status === 'offered');
      expect(offered.offer).toMatchObject({ rideId, pickup: CENTER, dropoff: near(4), expiresAt: expect.any(String) });
      expect(await ride(rideId)).toMatchObject({ rideId, status: 'offered', driverId: 'near-1', riderId: 'rider-1', offers: 1 });

      const accepted = ok(await api('POST', '/drivers/near-1/accept', { rideId }), 200);
      expect(accepted).toMatchObject({ status: 'on_trip', rideId, offer: null });
      const matched = await until('matched', () => ride(rideId), (r) => r.status === 'matched');
      expect(matched.matchMs).toEqual(expect.any(Number));
      const dash = ok(await anonymous('GET', '/dashboard'), 200);
      expect(dash).toMatchObject({ partitions: 4, authRequired: true, city: expect.any(Object) });

      expect(ok(await api('POST', `/rides/${rideId}/start`), 200)).toMatchObject({ status: 'in_progress', startedAt: expect.any(String) });
      expect(ok(await api('POST', `/rides/${rideId}/complete`), 200)).toMatchObject({ status: 'completed', endReason: 'completed', endedAt: expect.any(String) });
      await until('driver free', () => driver('near-1'), (d) => d.status === 'available' && d.trips === 1);

      const outputOf = (type: string) => (e: { event: string; data: Record<string, unknown> }) => e.event === 'output' && (e.data.event as { type: string }).type === type && (e.data.key === rideId || e.data.key === 'near-1');
      for (const type of ['ride.requested', 'ride.matching', 'driver.offered', 'ride.offered', 'driver.busy', 'ride.matched', 'ride.started', 'ride.completed']) {
        await events.waitFor(type, outputOf(type));
      }
      const stats = await events.waitFor('stats', (e) => e.event === 'stats' && (e.data.completed as number) >= 1);
      expect(stats.data).toMatchObject({ matched: expect.any(Number), p50: expect.any(Number), p99: expect.any(Number) });
    } finally {
      await events.close();
    }
  });

  it('a decline sends the ride to the next driver; refused commands answer 409 with the reason', async () => {
    ok(await api('POST', '/drivers/dec-a/online', near(-10.2)), 200);
    ok(await api('POST', '/drivers/dec-b/online', near(-10.6)), 200);
    const rideId = await requestRide('rider-2', near(-10));
    await until('offer a', () => driver('dec-a'), (d) => d.status === 'offered');
    // dec-b holds no offer: 409, and the message says so.
    const early = await api('POST', '/drivers/dec-b/accept', { rideId });
    expect(early.status).toBe(409);
    expect(early.json).toEqual({ error: 'Conflict', message: `driver dec-b has no pending offer (for ride ${rideId} or any other): it expired, was released, or never came` });
    const start = await api('POST', `/rides/${rideId}/start`);
    expect(start.status).toBe(409);
    expect(start.json.message).toBe(`ride ${rideId} is searching for a driver; only a matched ride can be started`);

    expect(ok(await api('POST', '/drivers/dec-a/decline', { rideId }), 200)).toMatchObject({ status: 'available', offer: null });
    await until('offer b', () => driver('dec-b'), (d) => d.status === 'offered');
    ok(await api('POST', '/drivers/dec-b/accept', { rideId }), 200);
    // On a trip, a driver cannot go offline.
    const offline = await api('POST', '/drivers/dec-b/offline');
    expect(offline.status).toBe(409);
    expect(offline.json.message).toBe(`driver dec-b is on ride ${rideId}: complete or cancel the ride before going offline`);
    await until('matched', () => ride(rideId), (r) => r.status === 'matched' && r.driverId === 'dec-b' && r.offers === 2);

    // A cancel after the match frees the driver; then the ride refuses everything.
    expect(ok(await api('POST', `/rides/${rideId}/cancel`), 200)).toMatchObject({ status: 'cancelled', endReason: 'cancelled: by the rider after the match' });
    await until('released', () => driver('dec-b'), (d) => d.status === 'available' && d.rideId === null);
    const again = await api('POST', `/rides/${rideId}/cancel`);
    expect(again.status).toBe(409);
    expect(again.json.message).toBe(`ride ${rideId} is cancelled; only a requested, matching, offered or matched ride can be cancelled`);
  });

  it('Idempotency-Key: a retried ride request names the same ride and is applied once; a retried accept too', async () => {
    const first = await requestRide('rider-3', near(-30), { 'idempotency-key': 'req-3' });
    const second = await requestRide('rider-3', near(-30), { 'idempotency-key': 'req-3' });
    expect(second).toBe(first);
    const other = await requestRide('rider-3', near(-30), { 'idempotency-key': 'req-3b' });
    expect(other).not.toBe(first);
    await until('both requested', async () => [await ride(first), await ride(other)], (rs) => rs.every((r) => r.status === 'matching'));
    const journal = await service.reader.journal('ride', first);
    expect(journal.filter((e) => e.event.type === 'request')).toHaveLength(1);
    expect(journal.find((e) => e.event.type === 'request')?.id).toBe('req-3');

    ok(await api('POST', '/drivers/idem-d/online', near(-30.3)), 200);
    const offered = await until('offer', () => driver('idem-d'), (d) => d.status === 'offered');
    const rideId = (offered.offer as { rideId: string }).rideId;
    const a1 = ok(await api('POST', '/drivers/idem-d/accept', { rideId }, { 'idempotency-key': 'acc-1' }), 200);
    const a2 = ok(await api('POST', '/drivers/idem-d/accept', { rideId }, { 'idempotency-key': 'acc-1' }), 200);
    expect(a2).toMatchObject({ status: 'on_trip', rideId, seq: a1.seq });
    expect((await service.reader.journal('driver', 'idem-d')).filter((e) => e.id === 'acc-1')).toHaveLength(1);
    // The other ride is still searching (and retrying): cancelled, so nothing runs on behind the next tests.
    const waiting = rideId === first ? other : first;
    expect(ok(await api('POST', `/rides/${waiting}/cancel`), 200)).toMatchObject({ status: 'cancelled' });
  });

  it('bad input: 400/401/404/413/415 with a message that says what was wrong, and nothing written', async () => {
    ok(await api('POST', '/drivers/known/online', near(50)), 200);
    await until('known applied', () => driver('known'), (d) => d.status === 'available');
    await service.reader.drain();
    const before = await fingerprint(service.namespace, service.partitions);
    const big = { riderId: 'x'.repeat(2_000), pickup: CENTER, dropoff: CENTER };
    const cases: [string, string, unknown, Record<string, string>, number, string][] = [
      ['POST', '/drivers/bad%20id!/online', CENTER, {}, 400, 'params.driverId: must be 1 to 64 letters, digits, "_" or "-", starting with a letter or digit, received "bad id!"'],
      ['POST', `/drivers/${'d'.repeat(65)}/online`, CENTER, {}, 400, 'params.driverId: must be 1 to 64 letters'],
      ['POST', '/drivers/new-1/online', undefined, {}, 400, 'body: is required: send a JSON object'],
      ['POST', '/drivers/new-1/online', { lat: 1 }, {}, 400, 'body.lng: is required'],
      ['POST', '/drivers/new-1/online', { lat: '52.5', lng: 13 }, {}, 400, 'body.lat: must be a number from -85.05112878 to 85.05112878 (the latitudes a Redis geo index holds), received "52.5"'],
      ['POST', '/drivers/new-1/online', { lat: 91, lng: 13 }, {}, 400, 'body.lat: must be a number from -85.05112878 to 85.05112878 (the latitudes a Redis geo index holds), received 91'],
      ['POST', '/drivers/new-1/online', { lat: 52, lng: -181 }, {}, 400, 'body.lng: must be a number from -180 to 180, received -181'],
      ['POST', '/drivers/new-1/online', { lat: 52, lng: 13, speed: 3 }, {}, 400, 'body: unknown field "speed"'],
      ['POST', '/drivers/new-1/online', [52, 13], {}, 400, 'body: must be an object, received [52,13]'],
      ['POST', '/drivers/new-1/online', '{"lat": 52,', {}, 400, 'body: is not valid JSON'],
      ['POST', '/drivers/new-1/online', 'lat=52&lng=13', { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'body: send JSON with Content-Type: application/json'],
      ['POST', '/drivers/new-1/online', 'hello', { 'content-type': 'text/plain' }, 415, 'body: send JSON with Content-Type: application/json (received text/plain'],
      ['POST', '/drivers/new-1/online', CENTER, { 'idempotency-key': 'k'.repeat(129) }, 400, 'headers.idempotency-key: must be 1 to 128 printable ASCII characters without spaces'],
      ['POST', '/drivers/known/location', { lat: 100, lng: 0 }, {}, 400, 'body.lat: must be a number'],
      ['POST', '/drivers/known/accept', {}, {}, 400, 'body.rideId: is required'],
      ['POST', '/drivers/known/decline', { rideId: 'has space' }, {}, 400, 'body.rideId: must be 1 to 64 letters'],
      ['POST', '/drivers/known/offline', { now: true }, {}, 400, 'body: unknown field "now"'],
      ['POST', '/drivers/ghost/location', CENTER, {}, 404, 'driver ghost is unknown: it has never gone online (POST /drivers/ghost/online)'],
      ['POST', '/drivers/ghost/offline', undefined, {}, 404, 'driver ghost is unknown'],
      ['POST', '/drivers/ghost/accept', { rideId: 'r1' }, {}, 404, 'driver ghost is unknown'],
      ['POST', '/drivers/ghost/decline', { rideId: 'r1' }, {}, 404, 'driver ghost is unknown'],
      ['GET', '/drivers/ghost', undefined, {}, 404, 'driver ghost is unknown'],
      ['POST', '/rides', { riderId: 'a b', pickup: CENTER, dropoff: CENTER }, {}, 400, 'body.riderId: must be 1 to 64 letters'],
      ['POST', '/rides', { riderId: 'ab', pickup: 'here', dropoff: CENTER }, {}, 400, 'body.pickup: must be an object, received "here"'],
      ['POST', '/rides', { riderId: 'ab', pickup: CENTER }, {}, 400, 'body.dropoff: is required'],
      ['POST', '/rides', { riderId: 'ab', pickup: { lat: 0, lng: 200 }, dropoff: { lat: -86, lng: 0 } }, {}, 400, 'body.pickup.lng: must be a number from -180 to 180, received 200; body.dropoff.lat: must be a number'],
      ['POST', '/rides', big, {}, 413, 'the request body is larger than the limit of 1024 bytes'],
      ['POST', '/rides/ghost-ride/cancel', undefined, {}, 404, 'ride ghost-ride is unknown'],
      ['POST', '/rides/ghost-ride/start', undefined, {}, 404, 'ride ghost-ride is unknown'],
      ['POST', '/rides/ghost-ride/complete', undefined, {}, 404, 'ride ghost-ride is unknown'],
      ['POST', '/rides/bad.id/cancel', undefined, {}, 400, 'params.rideId: must be 1 to 64 letters'],
      ['GET', '/rides/ghost-ride', undefined, {}, 404, 'ride ghost-ride is unknown'],
      ['GET', '/rides/%F0%9F%9A%95', undefined, {}, 400, 'params.rideId: must be 1 to 64 letters'],
      ['POST', '/workers/99/kill', undefined, {}, 404, 'no worker in slot 99: slots are 0 to 0'],
      ['POST', '/workers/first/kill', undefined, {}, 400, 'params.slot: must be a worker slot number (0, 1, …), received "first"'],
      ['DELETE', '/rides/x', undefined, {}, 404, 'no route DELETE /rides/x; the API is described at /docs'],
      ['POST', '/drivers/new-1/online', CENTER, { authorization: '' }, 401, 'this write needs the header Authorization: Bearer <API_KEY>'],
      ['POST', '/drivers/new-1/online', CENTER, { authorization: 'Bearer wrong' }, 401, 'the bearer token does not match API_KEY'],
      ['POST', '/rides', { riderId: 'ab', pickup: CENTER, dropoff: CENTER }, { authorization: 'Basic a2V5' }, 401, 'this write needs the header Authorization: Bearer <API_KEY>'],
      ['POST', '/workers/0/kill', undefined, { authorization: 'Bearer nope' }, 401, 'the bearer token does not match API_KEY'],
    ];
    const wrong: string[] = [];
    for (const [method, path, body, headers, status, message] of cases) {
      const a = await api(method, path, body, headers);
      const m = String(a.json.message ?? '');
      if (a.status !== status || !m.startsWith(message) || typeof a.json.error !== 'string') wrong.push(`${method} ${path} ${JSON.stringify(body)?.slice(0, 60)}: ${a.status} ${JSON.stringify(a.json)}`);
    }
    expect(wrong).toEqual([]);
    expect((await api('POST', '/drivers/ghost/online', undefined, { authorization: '' })).headers.get('www-authenticate')).toBe('Bearer');
    await service.reader.drain();
    expect(await fingerprint(service.namespace, service.partitions)).toEqual(before);
    expect(await service.reader.get('driver', 'new-1')).toBeUndefined();
    // The fingerprint does see a write: one accepted location update changes it.
    ok(await api('POST', '/drivers/known/location', near(50.1)), 202);
    await service.reader.drain();
    expect(await fingerprint(service.namespace, service.partitions)).not.toEqual(before);
  });

  it('service endpoints: /healthz, /readyz, /metrics, /workers, /docs (OpenAPI lists every endpoint), the page', async () => {
    expect(ok(await anonymous('GET', '/healthz'), 200)).toEqual({ status: 'ok' });
    const ready = ok(await anonymous('GET', '/readyz'), 200);
    expect(ready).toMatchObject({ status: 'ready', reasons: [], dispatcher: 'active' });
    const metrics = await fetch(`${service.url}/metrics`).then((r) => r.text());
    for (const name of ['ride_matching_rides_total{outcome="requested"}', 'ride_matching_offers_total{kind="made"}', 'ride_matching_drivers{status="available"}', 'ride_matching_http_requests_total', 'ride_matching_match_duration_seconds_bucket', 'ride_matching_workers_running 1', 'ride_matching_partitions_owned 4']) {
      expect(metrics).toContain(name);
    }
    expect(ok(await anonymous('GET', '/workers'), 200)).toMatchObject({ workers: [{ slot: 0, state: 'running', partitions: [0, 1, 2, 3] }] });
    const doc = ok(await anonymous('GET', '/docs/json'), 200) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual(
      [
        'POST /drivers/{driverId}/online',
        'POST /drivers/{driverId}/offline',
        'POST /drivers/{driverId}/location',
        'POST /drivers/{driverId}/accept',
        'POST /drivers/{driverId}/decline',
        'GET /drivers/{driverId}',
        'POST /rides',
        'GET /rides/{rideId}',
        'POST /rides/{rideId}/cancel',
        'POST /rides/{rideId}/start',
        'POST /rides/{rideId}/complete',
        'GET /dashboard',
        'GET /events',
        'GET /healthz',
        'GET /readyz',
        'GET /metrics',
        'GET /workers',
        'POST /workers/{slot}/kill',
      ].sort(),
    );
    const rideBody = (doc.paths['/rides']!.post as { requestBody: { content: { 'application/json': { schema: { required: string[] } } } } }).requestBody.content['application/json'].schema;
    expect(rideBody.required).toEqual(['riderId', 'pickup', 'dropoff']);
    const ui = await fetch(`${service.url}/docs`, { redirect: 'follow' });
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('swagger');
    const page = await fetch(`${service.url}/`);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).toContain('<canvas id="map"');
    expect(html).not.toMatch(/https?:\/\//); // nothing from elsewhere: works offline
    const js = await fetch(`${service.url}/app.js`).then((r) => r.text());
    expect(js).toContain("new EventSource('/events')");
    expect(js).not.toMatch(/https?:\/\//);
  });

  it('POST /workers/:slot/kill: the worker process dies, the supervisor restarts it, writes go on', async () => {
    const workers = async () => (ok(await anonymous('GET', '/workers'), 200) as { workers: { pid: number; partitions: number[] }[] }).workers;
    const before = (await workers())[0]!;
    const killed = ok(await api('POST', '/workers/0/kill'), 202);
    expect(killed).toEqual({ slot: 0, pid: before.pid, status: 'killed' });
    // A write now waits for the new worker (it takes the partitions once the dead one's leases expire).
    const online = ok(await api('POST', '/drivers/after-kill/online', near(60)), 200);
    expect(online).toMatchObject({ status: 'available' });
    const after = (await workers())[0]!;
    expect(after).toMatchObject({ slot: 0, generation: 1, restarts: 1, state: 'running', lastExit: { signal: 'SIGKILL', killed: true } });
    expect(after.pid).not.toBe(before.pid);
    await until('partitions back', workers, (ws) => ws[0]!.partitions.length === 4, 20_000);
  });

  it('rate limit: past the budget a client gets 429 with the limit and when to retry', async () => {
    let limited: Answer | undefined;
    for (let i = 0; i < RATE_LIMIT + 10 && !limited; i++) {
      const a = await anonymous('GET', '/drivers/ghost');
      if (a.status === 429) limited = a;
    }
    expect(limited).toBeDefined();
    expect(limited!.json).toEqual({ error: 'Too Many Requests', message: expect.stringMatching(new RegExp(`^rate limit exceeded: at most ${RATE_LIMIT} requests per 60 s per client; retry in \\d+`)) });
    expect(limited!.headers.get('retry-after')).toMatch(/^\d+$/);
    // Health and metrics are not limited.
    expect((await anonymous('GET', '/healthz')).status).toBe(200);
  });
});
