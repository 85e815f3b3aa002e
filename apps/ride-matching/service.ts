import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { createActorSystem, type ActorSystem } from '../../index';
import type { ServiceConfig } from './config';
import { Dispatcher } from './dispatcher';
import { driver } from './driver-machine';
import { EventHub } from './event-hub';
import { buildApi, statsNow } from './http';
import { ServiceMetrics } from './metrics';
import { ride } from './ride-machine';
import { WorkerPool, type PoolEvent } from './worker-pool';

/**
 * The ride-matching service, one process:
 *
 *   HTTP (fastify) ──send/ask──► actor system (producer/reader, worker: false)
 *                                      │ BullMQ queues, one lane per partition
 *   worker processes (worker.ts) ◄─────┘ run the driver and ride actors, supervised by WorkerPool
 *   dispatcher ◄── system.outputs() ── geo index + projections in Redis, matching, counters
 *        └──► SSE /events, the live page, /metrics
 */
export interface RideService {
  url: string;
  config: ServiceConfig;
  system: ActorSystem;
  dispatcher: Dispatcher;
  pool: WorkerPool;
  app: FastifyInstance;
  /** Resolves once every partition is held by a running worker (or rejects after `timeoutMs`). */
  ready(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface ServiceHooks {
  /** Worker and lease changes, for a console log. */
  onPoolEvent?: (e: PoolEvent) => void;
  onError?: (err: Error) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function startService(config: ServiceConfig, hooks: ServiceHooks = {}): Promise<RideService> {
  const onError = hooks.onError ?? ((err: Error) => process.stderr.write(`[ride-matching] ${err.message}\n`));
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  const closeAll = async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        onError(err as Error);
      }
    }
  };
  try {
    const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
    redis.on('error', () => {});
    cleanups.push(() => redis.quit().catch(() => redis.disconnect()));
    const system = await createActorSystem({ redis: config.redisUrl, namespace: config.namespace, partitions: config.partitions, actors: [driver, ride], worker: false });
    cleanups.push(() => system.close());
    system.events.on('error', onError);

    const hub = new EventHub();
    cleanups.push(() => hub.close());
    const pool = new WorkerPool({
      redisUrl: config.redisUrl,
      namespace: config.namespace,
      partitions: config.partitions,
      workers: config.workers,
      leaseTtlMs: config.leaseTtlMs,
      restartDelayMs: config.workerRestartDelayMs,
    });

    let metrics: ServiceMetrics | undefined;
    const dispatcher = new Dispatcher({
      system,
      redis,
      pushRadiusKm: config.ride.radiusKm,
      // The actor system's worker id is unique per system (a random suffix after host and pid), so two
      // services in one process, or two containers with the same hostname and pid, never share the lease.
      owner: system.workerId,
      onError,
      onOutput: (o) => {
        metrics?.outputs.inc({ type: String(o.event.type) });
        if (o.event.type === 'ride.matched') metrics?.matchSeconds.observe(Number(o.event.matchMs) / 1000);
        hub.broadcast('output', { type: o.type, key: o.key, seq: o.seq, event: o.event });
      },
    });
    metrics = new ServiceMetrics(dispatcher, pool, () => hub.size);

    pool.on('event', (e) => {
      if (e.type === 'worker.started' && e.generation > 0) metrics?.workerRestarts.inc();
      hub.broadcast('worker', { ...e, workers: pool.list() });
      hooks.onPoolEvent?.(e);
    });
    pool.start();
    cleanups.push(() => pool.close());
    dispatcher.start();
    cleanups.push(() => dispatcher.stop());
    const ticker = setInterval(() => hub.broadcast('stats', statsNow(dispatcher)), 1_000);
    ticker.unref();
    cleanups.push(() => clearInterval(ticker));

    const app = await buildApi({ config, system, redis, dispatcher, pool, metrics, hub });
    cleanups.push(() => app.close());
    await app.listen({ host: config.host, port: config.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

    let closing: Promise<void> | undefined;
    return {
      url,
      config,
      system,
      dispatcher,
      pool,
      app,
      async ready(timeoutMs = 30_000) {
        const deadline = Date.now() + timeoutMs;
        while (pool.ownedPartitions().size < config.partitions || !dispatcher.active) {
          if (Date.now() > deadline) {
            throw new Error(`not ready after ${timeoutMs} ms: ${pool.ownedPartitions().size}/${config.partitions} partitions held, dispatcher ${dispatcher.active ? 'active' : 'standby'}`);
          }
          await sleep(20);
        }
      },
      close() {
        closing ??= closeAll();
        return closing;
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
