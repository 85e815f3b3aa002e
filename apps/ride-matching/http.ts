import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { join } from 'node:path';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { v5 as uuidv5, v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { AskTimeoutError, SystemClosedError, type ActorState, type ActorSystem } from '../../index';
import type { ServiceConfig } from './config';
import type { Dispatcher } from './dispatcher';
import { driverStatus, type DriverContext } from './driver-machine';
import type { EventHub } from './event-hub';
import { CITY } from './geo';
import type { ServiceMetrics } from './metrics';
import { rideStatus, type RideContext } from './ride-machine';
import {
  describeIssues,
  DriverParams,
  InputError,
  jsonSchema,
  LocationBody,
  OfferAnswerBody,
  RideParams,
  RideRequestBody,
  WorkerParams,
  WriteHeaders,
} from './schemas';
import type { WorkerPool } from './worker-pool';

/**
 * The HTTP API (fastify): zod-validated input, OpenAPI at /docs, JSON errors
 * `{ error, message }` whose message says what was wrong, server-sent events,
 * Prometheus metrics, and the live page.
 *
 * Writes go to the actors: the ones that need the actor's decision use
 * `system.ask` (the answer is the state right after the event's commit; a
 * refused command answers 409 with the actor's reason), location updates and
 * ride requests use `system.send` (202: durably queued). The event id of a
 * write is its `Idempotency-Key` header when given.
 */

export interface ApiDeps {
  config: ServiceConfig;
  system: ActorSystem;
  redis: Redis;
  dispatcher: Dispatcher;
  pool: WorkerPool;
  metrics: ServiceMetrics;
  hub: EventHub;
}

/** An error that is an HTTP answer. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Ride ids made from an Idempotency-Key: the same rider and key always name the same ride. */
const RIDE_ID_NS = 'a3b1f2de-5c7e-4d0a-9b61-0e4f7d2c8a15';

const PUBLIC_DIR = join(__dirname, 'public');
const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

const EmptyBody = z.strictObject({}).nullish();

type Part = 'params' | 'body' | 'headers';
interface RouteInput {
  params?: z.ZodType;
  body?: z.ZodType;
  headers?: z.ZodType;
}

const iso = (ts: number | null | undefined) => (ts === null || ts === undefined ? null : new Date(ts).toISOString());

export function driverView(s: ActorState) {
  const c = s.context as unknown as DriverContext;
  return {
    driverId: s.key,
    status: driverStatus(s.value),
    location: c.location,
    offer: c.offer && { rideId: c.offer.rideId, pickup: c.offer.pickup, dropoff: c.offer.dropoff, expiresAt: iso(c.offer.expiresTs) },
    rideId: c.rideId,
    trips: c.trips,
    seq: s.seq,
  };
}

export function rideView(s: ActorState) {
  const c = s.context as unknown as RideContext;
  return {
    rideId: s.key,
    status: rideStatus(s.value),
    riderId: c.riderId,
    pickup: c.pickup,
    dropoff: c.dropoff,
    driverId: c.driverId,
    offers: c.offers,
    requestedAt: iso(c.requestedTs || null),
    matchedAt: iso(c.matchedTs),
    matchMs: c.matchedTs === null ? null : c.matchedTs - c.requestedTs,
    startedAt: iso(c.startedTs),
    endedAt: iso(c.endedTs),
    endReason: c.endReason,
    seq: s.seq,
  };
}

/** The same length for any key, so the comparison takes the same time whatever was sent. */
const digest = (s: string) => createHash('sha256').update(s).digest();

export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const { config, system, dispatcher, pool, metrics, hub } = deps;
  const app = Fastify({ bodyLimit: config.bodyLimitBytes, logger: false, forceCloseConnections: true });

  // Validation: zod, looked up by route and part; the JSON schemas given to fastify are for the docs.
  const validators = new Map<string, { part: Part; schema: z.ZodType }>();
  app.setValidatorCompiler(({ method, url, httpPart }) => {
    const v = validators.get(`${method} ${url} ${httpPart}`);
    if (!v) return () => true;
    return (data: unknown) => {
      const r = v.schema.safeParse(data ?? undefined, { reportInput: true });
      return r.success ? { value: r.data } : { error: new InputError(describeIssues(v.part, r.error.issues)) };
    };
  });
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  // Bodies are JSON or nothing: text/plain gets 415 like any other type.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((err: unknown, req, reply) => {
    const e = err as { statusCode?: number; code?: string; message?: string; headers?: Record<string, string> };
    if (err instanceof InputError) return reply.code(400).send({ error: 'Bad Request', message: err.message, issues: err.issues });
    if (err instanceof HttpError) return reply.code(err.statusCode).headers(err.headers).send({ error: STATUS_CODES[err.statusCode], message: err.message });
    if (err instanceof AskTimeoutError) {
      return reply.code(503).header('retry-after', '1').send({
        error: 'Service Unavailable',
        message: `no worker committed the event within ${config.askTimeoutMs} ms (a worker may be restarting); it stays queued and will be applied — retry with the same Idempotency-Key to read its outcome`,
      });
    }
    if (err instanceof SystemClosedError) return reply.code(503).send({ error: 'Service Unavailable', message: 'the service is shutting down' });
    const status = e.statusCode ?? 500;
    if (status === 413) return reply.code(413).send({ error: 'Payload Too Large', message: `the request body is larger than the limit of ${config.bodyLimitBytes} bytes` });
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return reply.code(415).send({ error: 'Unsupported Media Type', message: `body: send JSON with Content-Type: application/json (received ${req.headers['content-type'] ?? 'none'})` });
    if (e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return reply.code(400).send({ error: 'Bad Request', message: 'body: is empty but Content-Type says JSON: send a JSON object, or no Content-Type when there is no body' });
    if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError) return reply.code(400).send({ error: 'Bad Request', message: `body: is not valid JSON (${e.message})` });
    if (status >= 400 && status < 500) return reply.code(status).send({ error: STATUS_CODES[status] ?? 'Error', message: e.message ?? 'bad request' });
    process.stderr.write(`[ride-matching] ${req.method} ${req.url} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return reply.code(500).send({ error: 'Internal Server Error', message: 'the request failed unexpectedly; the service log has the details' });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'Not Found', message: `no route ${req.method} ${req.url.split('?')[0]}; the API is described at /docs` }));

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });
  app.addHook('preClose', async () => hub.close());

  await app.register(rateLimit, {
    global: true,
    max: config.rateLimitMax,
    timeWindow: config.rateLimitWindowMs,
    keyGenerator: (req) => req.ip,
    errorResponseBuilder: (_req, ctx) => ({
      statusCode: 429,
      error: 'Too Many Requests',
      message: `rate limit exceeded: at most ${ctx.max} requests per ${config.rateLimitWindowMs / 1000} s per client; retry in ${ctx.after}`,
    }),
  });

  // Writes need the API key when there is one (checked before the body is read).
  app.addHook('onRequest', async (req) => {
    if (!config.apiKey || !(req.routeOptions.config as { write?: boolean } | undefined)?.write) return;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(header);
    if (!m || !timingSafeEqual(digest(m[1]!), digest(config.apiKey))) {
      throw new HttpError(401, m ? 'the bearer token does not match API_KEY' : 'this write needs the header Authorization: Bearer <API_KEY>', { 'www-authenticate': 'Bearer' });
    }
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'keyflow ride matching',
        version: '1.0.0',
        description:
          'Drivers and rides as persistent keyflow actors. Writes take an optional Idempotency-Key header (the event id). ' +
          'Errors are JSON { error, message } with a message that says what was wrong.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API_KEY, when the service runs with one (writes only)' } } },
      tags: [
        { name: 'drivers', description: 'driver actors' },
        { name: 'rides', description: 'ride actors' },
        { name: 'service', description: 'health, metrics, events, workers' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  interface Spec<I extends RouteInput> {
    method: 'GET' | 'POST';
    url: string;
    tag: 'drivers' | 'rides' | 'service';
    summary: string;
    description?: string;
    input?: I;
    write?: boolean;
    limited?: boolean;
    responses: Record<number, string>;
    handler: (
      input: { [K in keyof I]: I[K] extends z.ZodType ? z.output<I[K]> : never } & { idempotencyKey: string | undefined },
      reply: FastifyReply,
      req: FastifyRequest,
    ) => Promise<unknown>;
  }

  function route<I extends RouteInput>(spec: Spec<I>): void {
    const input: RouteInput = { ...spec.input };
    if (spec.write) input.headers ??= WriteHeaders;
    const schema: Record<string, unknown> = {
      tags: [spec.tag],
      summary: spec.summary,
      description: spec.description,
      response: Object.fromEntries(Object.entries(spec.responses).map(([code, description]) => [code, { description, type: 'object', additionalProperties: true }])),
    };
    if (spec.write && config.apiKey) schema.security = [{ bearer: [] }];
    for (const part of ['params', 'body', 'headers'] as const) {
      const s = input[part];
      if (!s) continue;
      validators.set(`${spec.method} ${spec.url} ${part}`, { part, schema: s });
      schema[part] = jsonSchema(s);
    }
    app.route({
      method: spec.method,
      url: spec.url,
      schema,
      config: { write: spec.write ?? false, ...(spec.limited === false ? { rateLimit: false } : {}) },
      handler: async (req, reply) => {
        const parts = req as unknown as { params: unknown; body: unknown; headers: Record<string, string | undefined> };
        const args = { params: parts.params, body: parts.body, headers: parts.headers, idempotencyKey: parts.headers['idempotency-key'] };
        return spec.handler(args as never, reply, req);
      },
    });
  }

  const unknown = (type: 'driver' | 'ride', key: string) =>
    new HttpError(404, type === 'driver' ? `driver ${key} is unknown: it has never gone online (POST /drivers/${key}/online)` : `ride ${key} is unknown`);

  /** The committed state, or 404. */
  const read = async (type: 'driver' | 'ride', key: string): Promise<ActorState> => {
    const s = await system.get(type, key);
    if (!s) throw unknown(type, key);
    return s;
  };

  /**
   * 404 unless the actor exists, before a write to it (which would otherwise create it). Its first
   * journal entry is enough (one LRANGE); `get` would load the snapshot and replay the tail.
   */
  const exists = async (type: 'driver' | 'ride', key: string): Promise<void> => {
    if ((await system.journal(type, key, { fromSeq: 1, toSeq: 1 })).length === 0) throw unknown(type, key);
  };

  /** Send and wait for the commit; a command the actor refused is a 409 with its reason. */
  const command = async (type: 'driver' | 'ride', key: string, event: { type: string } & Record<string, unknown>, idempotencyKey: string | undefined) => {
    const id = idempotencyKey ?? uuidv7();
    const state = await system.ask(type, key, event, { id, timeoutMs: config.askTimeoutMs });
    const rejection = (state.context as { rejection?: { eventId: string; message: string } | null }).rejection;
    if (rejection && rejection.eventId === id) throw new HttpError(409, rejection.message);
    return state;
  };

  // ---- drivers -------------------------------------------------------------

  const answered = { 200: 'the driver after the event was committed', 400: 'bad input', 401: 'API_KEY required', 404: 'unknown driver', 409: 'refused by the driver actor (the message says why)', 413: 'body too large', 429: 'rate limited', 503: 'not committed in time' };

  route({
    method: 'POST',
    url: '/drivers/:driverId/online',
    tag: 'drivers',
    summary: 'The driver goes online (available) at a position; also creates the driver',
    input: { params: DriverParams, body: LocationBody },
    write: true,
    responses: answered,
    handler: async ({ params, body, idempotencyKey }) => driverView(await command('driver', params.driverId, { type: 'online', lat: body.lat, lng: body.lng }, idempotencyKey)),
  });
  route({
    method: 'POST',
    url: '/drivers/:driverId/offline',
    tag: 'drivers',
    summary: 'The driver goes offline (refused while on a trip; declines an offer it holds)',
    input: { params: DriverParams, body: EmptyBody },
    write: true,
    responses: answered,
    handler: async ({ params, idempotencyKey }) => {
      await exists('driver', params.driverId);
      return driverView(await command('driver', params.driverId, { type: 'offline' }, idempotencyKey));
    },
  });
  route({
    method: 'POST',
    url: '/drivers/:driverId/location',
    tag: 'drivers',
    summary: 'A location update (any state); queued durably, applied in order',
    input: { params: DriverParams, body: LocationBody },
    write: true,
    responses: { 202: 'queued', 400: 'bad input', 401: 'API_KEY required', 404: 'unknown driver', 413: 'body too large', 429: 'rate limited' },
    handler: async ({ params, body, idempotencyKey }, reply) => {
      await exists('driver', params.driverId);
      const { id } = await system.send('driver', params.driverId, { type: 'location', lat: body.lat, lng: body.lng }, { id: idempotencyKey });
      return reply.code(202).send({ driverId: params.driverId, eventId: id, status: 'queued' });
    },
  });
  for (const answer of ['accept', 'decline'] as const) {
    route({
      method: 'POST',
      url: `/drivers/:driverId/${answer}`,
      tag: 'drivers',
      summary: answer === 'accept' ? 'The driver accepts the offer it holds: the ride is matched' : 'The driver declines the offer it holds: the ride goes to the next driver',
      input: { params: DriverParams, body: OfferAnswerBody },
      write: true,
      responses: answered,
      handler: async ({ params, body, idempotencyKey }) => {
        await exists('driver', params.driverId);
        return driverView(await command('driver', params.driverId, { type: answer, rideId: body.rideId }, idempotencyKey));
      },
    });
  }
  route({
    method: 'GET',
    url: '/drivers/:driverId',
    tag: 'drivers',
    summary: 'A driver: status, location, the offer or ride it holds',
    input: { params: DriverParams },
    responses: { 200: 'the driver', 400: 'bad id', 404: 'unknown driver' },
    handler: async ({ params }) => driverView(await read('driver', params.driverId)),
  });

  // ---- rides ---------------------------------------------------------------

  route({
    method: 'POST',
    url: '/rides',
    tag: 'rides',
    summary: 'Request a ride; matching starts at once',
    description: 'Answers 202 with the ride id once the request is durably queued. With an Idempotency-Key, the ride id is derived from it (and the rider), so a retry names the same ride.',
    input: { body: RideRequestBody },
    write: true,
    responses: { 202: '{ rideId } — queued', 400: 'bad input', 401: 'API_KEY required', 413: 'body too large', 429: 'rate limited' },
    handler: async ({ body, idempotencyKey }, reply) => {
      const rideId = idempotencyKey ? `r-${uuidv5(`${body.riderId}\n${idempotencyKey}`, RIDE_ID_NS)}` : `r-${uuidv7()}`;
      await system.send('ride', rideId, { type: 'request', riderId: body.riderId, pickup: body.pickup, dropoff: body.dropoff, ...config.ride }, { id: idempotencyKey });
      return reply.code(202).header('location', `/rides/${rideId}`).send({ rideId, status: 'requested' });
    },
  });
  route({
    method: 'GET',
    url: '/rides/:rideId',
    tag: 'rides',
    summary: 'A ride: status, driver, timings',
    input: { params: RideParams },
    responses: { 200: 'the ride', 400: 'bad id', 404: 'unknown ride' },
    handler: async ({ params }) => rideView(await read('ride', params.rideId)),
  });
  const rideCommands = {
    cancel: 'Cancel a ride (before it started); a driver holding its offer or trip is released',
    start: 'The matched driver picked the rider up',
    complete: 'The trip ended; the driver becomes available',
  } as const;
  for (const [name, summary] of Object.entries(rideCommands)) {
    route({
      method: 'POST',
      url: `/rides/:rideId/${name}`,
      tag: 'rides',
      summary,
      input: { params: RideParams, body: EmptyBody },
      write: true,
      responses: { ...answered, 200: 'the ride after the event was committed', 404: 'unknown ride', 409: 'refused by the ride actor (the message says why)' },
      handler: async ({ params, idempotencyKey }) => {
        await exists('ride', params.rideId);
        return rideView(await command('ride', params.rideId, { type: name }, idempotencyKey));
      },
    });
  }

  // ---- service -------------------------------------------------------------

  const dashboard = () => ({
    city: CITY,
    settings: config.ride,
    partitions: config.partitions,
    authRequired: config.apiKey !== undefined,
    drivers: [...dispatcher.drivers].map(([driverId, pin]) => ({ driverId, ...pin })),
    rides: [...dispatcher.rides].map(([rideId, pin]) => ({ rideId, ...pin })),
    stats: statsNow(dispatcher),
    workers: pool.list(),
  });

  route({
    method: 'GET',
    url: '/dashboard',
    tag: 'service',
    summary: 'What the live page starts from: drivers, open rides, counters, workers',
    responses: { 200: 'the current picture' },
    handler: async () => dashboard(),
  });
  app.get('/events', { schema: { tags: ['service'], summary: 'Server-sent events: every actor output (event: output), counters each second (stats), worker changes (worker)' }, config: { rateLimit: false } }, (_req, reply) => {
    reply.hijack();
    hub.add(reply.raw, { event: 'hello', data: { namespace: config.namespace, partitions: config.partitions } });
  });
  app.get('/healthz', { schema: { tags: ['service'], summary: 'Liveness: the HTTP process answers' }, config: { rateLimit: false } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { tags: ['service'], summary: 'Readiness: Redis answers and every partition is held by a running worker' }, config: { rateLimit: false } }, async (_req, reply) => {
    const reasons: string[] = [];
    const ping = await deps.redis.ping().catch((err: Error) => err.message);
    if (ping !== 'PONG') reasons.push(`Redis does not answer PING (${ping})`);
    const owned = pool.ownedPartitions().size;
    if (owned < config.partitions) reasons.push(`${config.partitions - owned} of ${config.partitions} partitions have no running worker yet`);
    const body = { status: reasons.length === 0 ? 'ready' : 'not ready', reasons, dispatcher: dispatcher.active ? 'active' : 'standby', workers: pool.list().map((w) => ({ slot: w.slot, state: w.state, partitions: w.partitions })) };
    return reply.code(reasons.length === 0 ? 200 : 503).send(body);
  });
  app.get('/metrics', { schema: { tags: ['service'], summary: 'Prometheus metrics' }, config: { rateLimit: false } }, async (_req, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
  route({
    method: 'GET',
    url: '/workers',
    tag: 'service',
    summary: 'The worker processes, their state and the partitions they hold',
    responses: { 200: '{ workers }' },
    handler: async () => ({ workers: pool.list() }),
  });
  route({
    method: 'POST',
    url: '/workers/:slot/kill',
    tag: 'service',
    summary: 'SIGKILL a worker process (the page’s button): its partitions move to the others, the supervisor restarts it',
    input: { params: WorkerParams, body: EmptyBody },
    write: true,
    responses: { 202: 'killed; it will be restarted', 404: 'no such worker', 409: 'the worker is not running (already restarting)' },
    handler: async ({ params }, reply) => {
      const r = pool.kill(params.slot);
      if ('error' in r) {
        if (r.error === 'no such worker') throw new HttpError(404, `no worker in slot ${params.slot}: slots are 0 to ${config.workers - 1}`);
        throw new HttpError(409, `worker ${params.slot} is not running (it is being restarted)`);
      }
      return reply.code(202).send({ slot: params.slot, pid: r.pid, status: 'killed' });
    },
  });

  const files = Object.fromEntries(Object.entries(STATIC).map(([url, f]) => [url, { ...f, body: readFileSync(join(PUBLIC_DIR, f.file)) }]));
  for (const [url, f] of Object.entries(files)) {
    app.get(url, { schema: { hide: true }, config: { rateLimit: false } }, async (_req, reply) => reply.type(f.type).header('cache-control', 'no-cache').send(f.body));
  }

  return app;
}

/** Counters and match-time percentiles, as the page and the SSE `stats` event show them. */
export function statsNow(dispatcher: Dispatcher) {
  const drivers: Record<string, number> = { offline: 0, available: 0, offered: 0, on_trip: 0 };
  for (const d of dispatcher.drivers.values()) drivers[d.status] = (drivers[d.status] ?? 0) + 1;
  return { ...dispatcher.stats, ...dispatcher.percentiles(), openRides: dispatcher.rides.size, drivers, dispatcher: dispatcher.active ? 'active' : 'standby' };
}
