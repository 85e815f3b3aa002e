import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Dispatcher, RideStats } from './dispatcher';
import type { WorkerPool } from './worker-pool';

/**
 * The service's Prometheus metrics (GET /metrics), in a registry of its own.
 *
 * Ride and offer totals are read from the dispatcher's counters, which are
 * kept in Redis exactly once (they survive restarts of the service); the
 * rest is per process: HTTP requests, match-time histogram of the matches
 * this process saw, workers, SSE clients, Node.js defaults.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  readonly matchSeconds: Histogram;
  readonly workerRestarts: Counter;
  readonly outputs: Counter<'type'>;

  constructor(dispatcher: Dispatcher, pool: WorkerPool, sseClients: () => number) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'ride_matching_process_' });
    this.httpRequests = new Counter({ name: 'ride_matching_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], registers });
    this.httpDuration = new Histogram({
      name: 'ride_matching_http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.matchSeconds = new Histogram({
      name: 'ride_matching_match_duration_seconds',
      help: 'Time from ride request to accepted offer (event time), for the matches this process read',
      buckets: [0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60],
      registers,
    });
    this.workerRestarts = new Counter({ name: 'ride_matching_worker_restarts_total', help: 'Worker processes restarted by the supervisor', registers });
    this.outputs = new Counter({ name: 'ride_matching_outputs_total', help: 'Actor outputs applied by the dispatcher in this process', labelNames: ['type'], registers });

    const totals: [string, string, (s: RideStats) => Record<string, number>][] = [
      ['ride_matching_rides_total', 'Rides by outcome (requested, matched, completed, cancelled, expired), exactly once across restarts', (s) => ({
        requested: s.requested,
        matched: s.matched,
        completed: s.completed,
        cancelled: s.cancelled,
        expired: s.expired,
      })],
      ['ride_matching_offers_total', 'Offers made to drivers, and how the failed ones failed (refused, declined, timeout)', (s) => ({ made: s.offers, refused: s.refused, declined: s.declined, timeout: s.timeout })],
    ];
    for (const [name, help, pick] of totals) {
      const label = name === 'ride_matching_rides_total' ? 'outcome' : 'kind';
      new Counter({
        name,
        help,
        labelNames: [label],
        registers,
        collect() {
          this.reset();
          for (const [k, v] of Object.entries(pick(dispatcher.stats))) this.inc({ [label]: k }, v);
        },
      });
    }
    new Gauge({
      name: 'ride_matching_drivers',
      help: 'Drivers by status, as the dispatcher last saw them',
      labelNames: ['status'],
      registers,
      collect() {
        const counts: Record<string, number> = { offline: 0, available: 0, offered: 0, on_trip: 0 };
        for (const d of dispatcher.drivers.values()) counts[d.status] = (counts[d.status] ?? 0) + 1;
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
      },
    });
    new Gauge({
      name: 'ride_matching_open_rides',
      help: 'Rides not completed, cancelled or expired',
      registers,
      collect() {
        this.set(dispatcher.rides.size);
      },
    });
    new Gauge({
      name: 'ride_matching_workers_running',
      help: 'Worker processes running',
      registers,
      collect() {
        this.set(pool.list().filter((w) => w.state === 'running').length);
      },
    });
    new Gauge({
      name: 'ride_matching_partitions_owned',
      help: 'Partitions whose lease a running worker reports holding',
      registers,
      collect() {
        this.set(pool.ownedPartitions().size);
      },
    });
    new Gauge({
      name: 'ride_matching_sse_clients',
      help: 'Connected /events clients',
      registers,
      collect() {
        this.set(sseClients());
      },
    });
  }
}
