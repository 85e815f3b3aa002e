/**
 * Prometheus metrics of a long-lived worker (prom-client), served at
 * GET /metrics on `port` (0: any free port; the chosen one is returned).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export class FraudMetrics {
  readonly registry = new Registry();
  readonly transactions = new Counter({ name: 'fraud_transactions_total', help: 'Transactions submitted to the account actors', registers: [this.registry] });
  readonly badInput = new Counter({ name: 'fraud_bad_input_total', help: 'Input lines or stream entries that are not valid transactions (skipped)', registers: [this.registry] });
  readonly alerts = new Counter({ name: 'fraud_alerts_total', help: 'fraud.alert outputs read from the outputs stream', labelNames: ['rule'] as const, registers: [this.registry] });
  readonly late = new Counter({ name: 'fraud_late_transactions_total', help: 'Transactions later than the grace period', registers: [this.registry] });
  readonly statusChanges = new Counter({ name: 'fraud_status_changes_total', help: 'Account state changes, by the state entered', labelNames: ['to'] as const, registers: [this.registry] });
  readonly alertLatency = new Histogram({
    name: 'fraud_alert_latency_seconds',
    help: 'From the submit of the transaction that completed an alert to the alert read from the outputs stream',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly streamPending = new Gauge({ name: 'fraud_stream_pending', help: 'Entries delivered to this consumer group and not yet acknowledged', registers: [this.registry] });
  readonly streamLag = new Gauge({ name: 'fraud_stream_lag', help: 'Entries of the input stream not yet delivered to the consumer group', registers: [this.registry] });
  private server: Server | undefined;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'fraud_' });
  }

  /** Serve /metrics; resolves with the port listened on. */
  async listen(port: number, host = '0.0.0.0'): Promise<number> {
    const server = createServer((req, res) => {
      if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
        this.registry.metrics().then(
          (body) => {
            res.writeHead(200, { 'content-type': this.registry.contentType });
            res.end(body);
          },
          (err: Error) => {
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end(err.message);
          },
        );
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found: metrics are at GET /metrics\n');
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
