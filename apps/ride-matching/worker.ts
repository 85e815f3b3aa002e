/**
 * A worker process of the ride-matching service: an actor system with the
 * `driver` and `ride` actors on the service's namespace, holding the leases
 * of the partitions the membership gives it, until it is killed. The service
 * (worker-pool.ts) spawns these and restarts them; this file is not meant to
 * be run by hand, but can be, to add a worker from another terminal:
 *
 *   REDIS_URL=redis://… RM_NAMESPACE=rides RM_PARTITIONS=8 node --import tsx apps/ride-matching/worker.ts
 *
 * It reports on stdout, one JSON object per line: `started`, `lease`, `lost`,
 * `error` (worker-level errors it recovers from), `supervision`.
 * Env: REDIS_URL, RM_NAMESPACE, RM_PARTITIONS, RM_LEASE_TTL_MS, RM_WORKER_ID.
 */
import { createActorSystem, type SupervisionEvent } from '../../index';
import { driver } from './driver-machine';
import { ride } from './ride-machine';

const report = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ ...event, at: Date.now() })}\n`);

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (the service sets it when it spawns a worker)`);
  return v;
}

async function main(): Promise<void> {
  const system = await createActorSystem({
    redis: env('REDIS_URL'),
    namespace: env('RM_NAMESPACE'),
    partitions: Number(env('RM_PARTITIONS')),
    leaseTtlMs: Number(process.env.RM_LEASE_TTL_MS ?? 1_000),
    workerId: process.env.RM_WORKER_ID || undefined,
    actors: [driver, ride],
  });
  system.events.on('leaseAcquired', ({ partition, epoch }) => report({ event: 'lease', partition, epoch }));
  system.events.on('leaseLost', ({ partition, epoch, reason }) => report({ event: 'lost', partition, epoch, reason }));
  system.events.on('error', (err, ctx) => report({ event: 'error', partition: ctx.partition ?? null, message: `${err.name}: ${err.message}` }));
  for (const kind of ['restarted', 'deadLettered', 'stopped', 'escalated'] as const) {
    system.events.on(kind, (info: SupervisionEvent) => report({ event: 'supervision', kind, type: info.type, key: info.key, eventId: info.eventId, message: info.error.message }));
  }
  report({ event: 'started', workerId: system.workerId, pid: process.pid });
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    void system.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Spawned by the service with an IPC channel: when the service dies, so does its worker (no orphan keeps leases).
  process.on('disconnect', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`ride-matching worker failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
