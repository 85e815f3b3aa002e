/**
 * The long-lived worker: transactions from a Redis stream (consumer group),
 * alerts to the outputs stream and, when given, to the alerts file; metrics
 * for Prometheus. Runs until the signal aborts, then stops reading, lets what
 * was submitted commit, writes the alerts file in its canonical order, and
 * returns the summary.
 */
import { hostname } from 'node:os';
import type { Cluster, Redis } from 'ioredis';
import { AlertFile } from './alerts-file';
import type { FraudDetector } from './detector';
import type { FraudMetrics } from './metrics';
import type { LogStream, RunSummary } from './report';
import { StreamConsumer, type StreamConsumerOptions } from './stream-input';
import { RunTally } from './tally';

export interface StreamRunOptions {
  detector: FraudDetector;
  /** A client for the stream's Redis. */
  redis: Redis | Cluster;
  consumer: Omit<StreamConsumerOptions, 'consumer'> & { consumer?: string };
  output?: string;
  metrics?: FraudMetrics;
  signal: AbortSignal;
  log?: LogStream;
  /** A status line this often (ms); 0: none. @default 10000 */
  statusEveryMs?: number;
  /** Called once the group exists and reading starts. */
  onReady?: () => void;
}

/** Default consumer name: stable for one host (a restart resumes its own pending entries). */
export const defaultConsumerName = () => `fraud-${hostname()}`;

export async function runStream(opts: StreamRunOptions): Promise<RunSummary> {
  const { detector, metrics, signal } = opts;
  const log = opts.log ?? process.stderr;
  const consumer = new StreamConsumer(opts.redis, { ...opts.consumer, consumer: opts.consumer.consumer ?? defaultConsumerName() });
  await consumer.ensureGroup();
  const file = opts.output ? await AlertFile.open(opts.output, { namespace: detector.namespace, instance: detector.instance }) : undefined;
  const tally = new RunTally(detector, { file, metrics, maxLatencies: 100_000, maxSubmitTimes: 200_000 });
  // A long-lived worker reports on new outputs only (the file, if any, resumes from its checkpoint).
  // A concrete position, not 'now': the follower may have to read again from where it started.
  tally.follower.start(file ? file.from : await detector.outputsPosition());

  const statusEvery = opts.statusEveryMs ?? 10_000;
  let lastStatus = Date.now();
  opts.onReady?.();
  try {
    /** Entries handled (held by keyflow, or counted as bad), acknowledged with the next read. */
    let handled: string[] = [];
    while (!signal.aborted) {
      const batch = await consumer.read(handled);
      tally.read += batch.ids.length;
      await tally.submit(batch.transactions);
      for (const err of batch.bad) {
        tally.badInput(err);
        log.write(`[fraud] bad input, skipped: ${err.message}\n`);
      }
      handled = batch.ids;
      const now = Date.now();
      if ((metrics || statusEvery > 0) && now - lastStatus >= Math.max(statusEvery, 1_000)) {
        lastStatus = now;
        const b = await consumer.backlog();
        metrics?.streamPending.set(b.pending);
        if (b.lag !== undefined) metrics?.streamLag.set(b.lag);
        if (statusEvery > 0) log.write(`[fraud] ${tally.submitted} tx, ${tally.follower.alerts} alerts, ${tally.bad} bad, pending ${b.pending}${b.lag === undefined ? '' : `, lag ${b.lag}`}\n`);
      }
    }
    await consumer.ack(handled);
    const elapsedMs = await tally.settle(60_000);
    await file?.finish();
    return tally.summary(`stream ${opts.consumer.stream} (group ${consumer.group})`, elapsedMs, opts.output, false);
  } finally {
    await tally.follower.stop().catch(() => {});
    await file?.close();
  }
}
