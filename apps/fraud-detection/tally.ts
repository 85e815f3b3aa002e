/**
 * What a run (file or stream) keeps track of, and how it ends: the counts of
 * input, the output follower, and the summary.
 */
import type { AlertFile } from './alerts-file';
import { sendTransactions, type FraudDetector } from './detector';
import { OutputFollower, SubmitTimes } from './follower';
import type { FraudMetrics } from './metrics';
import { latencySummary, type BadInput, type RunSummary } from './report';
import type { InvalidTransactionError, Transaction } from './transaction';

/** Bad inputs kept for the summary (all are counted). */
const BAD_SAMPLES = 100;
/** Distinct accounts counted (a long-lived worker stops counting there). */
const MAX_ACCOUNTS = 1_000_000;

export class RunTally {
  read = 0;
  submitted = 0;
  bad = 0;
  readonly badSamples: BadInput[] = [];
  readonly accounts = new Set<string>();
  readonly submitTimes: SubmitTimes;
  readonly follower: OutputFollower;
  readonly started = Date.now();

  constructor(
    private readonly detector: FraudDetector,
    private readonly opts: { file?: AlertFile; metrics?: FraudMetrics; maxLatencies?: number; maxSubmitTimes?: number },
  ) {
    const metrics = opts.metrics;
    this.submitTimes = new SubmitTimes(opts.maxSubmitTimes);
    this.follower = new OutputFollower(detector, {
      file: opts.file,
      submitTimes: this.submitTimes,
      maxLatencies: opts.maxLatencies,
      onAlert: (a, latency) => {
        metrics?.alerts.inc({ rule: a.rule });
        if (latency !== undefined) metrics?.alertLatency.observe(latency / 1000);
      },
      onLate: () => metrics?.late.inc(),
      onStatus: (to) => metrics?.statusChanges.inc({ to }),
    });
  }

  /** Submit checked transactions (one sendMany), remembering when (for latency) and for which accounts. */
  async submit(transactions: Transaction[]): Promise<void> {
    if (transactions.length === 0) return;
    await sendTransactions(this.detector.system, transactions, transactions.length);
    this.submitTimes.record(
      transactions.map((t) => t.id),
      Date.now(),
    );
    for (const t of transactions) if (this.accounts.size < MAX_ACCOUNTS) this.accounts.add(t.accountId);
    this.submitted += transactions.length;
    this.opts.metrics?.transactions.inc(transactions.length);
  }

  badInput(err: InvalidTransactionError): void {
    this.bad++;
    this.opts.metrics?.badInput.inc();
    if (this.badSamples.length < BAD_SAMPLES) this.badSamples.push({ where: err.where, reason: err.reason });
  }

  /** Wait until everything submitted is committed and its outputs read; stop following. */
  async settle(drainTimeoutMs: number): Promise<number> {
    await this.detector.drain({ timeoutMs: drainTimeoutMs });
    const elapsedMs = Date.now() - this.started;
    await this.follower.caughtUp();
    await this.follower.stop();
    return elapsedMs;
  }

  summary(source: string, elapsedMs: number, output: string | undefined, interrupted: boolean): RunSummary {
    return {
      source,
      read: this.read,
      transactions: this.submitted,
      bad: this.bad,
      badSamples: this.badSamples,
      accounts: this.accounts.size,
      counts: this.follower.counts,
      alertsInFile: this.opts.file?.alerts,
      output,
      elapsedMs,
      throughput: this.submitted / Math.max(0.001, elapsedMs / 1000),
      latency: latencySummary(this.follower.latencies),
      interrupted,
    };
  }
}
