/**
 * A run of the worker over NDJSON input (a file or stdin): read lines, check
 * each (a bad line is counted and reported with its line number, and the run
 * goes on), submit the transactions in batches, follow the outputs into the
 * alerts file, wait until everything is committed and read, write the file in
 * its canonical order and return the summary.
 *
 * Re-running over the same input (or resuming after a crash) is safe: the
 * transaction ids are the event ids, and the alerts file resumes from its
 * checkpoint.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { AlertFile } from './alerts-file';
import { DEFAULT_BATCH, type FraudDetector } from './detector';
import type { FraudMetrics } from './metrics';
import { createProgress, type LogStream, type RunSummary } from './report';
import { RunTally } from './tally';
import { InvalidTransactionError, parseTransactionLine, type Transaction } from './transaction';

export interface InputRunOptions {
  detector: FraudDetector;
  input: Readable;
  /** Name of the input for the summary (a path, or "stdin"). */
  source: string;
  /** Size of the input in bytes, when known: the progress bar shows a percentage. */
  inputBytes?: number;
  /** The alerts file; none: alerts only go to the outputs stream. */
  output?: string;
  /** Also write every bad line here (NDJSON { line, error, text }). */
  errorsFile?: string;
  /** Transactions per sendMany. @default 500 */
  batchSize?: number;
  /** Offered load, transactions per second; undefined: as fast as possible. */
  rate?: number;
  /** Bad lines printed as they come (all are counted). @default 20 */
  reportBad?: number;
  /** No progress display, no bad-line lines on stderr. */
  quiet?: boolean;
  /** Where progress and bad lines go. @default process.stderr */
  log?: LogStream;
  metrics?: FraudMetrics;
  /** Aborting stops reading; what was submitted is still drained and written. */
  signal?: AbortSignal;
  /** Drain timeout after the input ends. @default 600000 */
  drainTimeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runInput(opts: InputRunOptions): Promise<RunSummary> {
  const { detector } = opts;
  const log = opts.log ?? process.stderr;
  const batchSize = Math.max(1, Math.min(opts.batchSize ?? DEFAULT_BATCH, opts.rate ? Math.max(1, Math.floor(opts.rate / 20)) : Infinity));
  const reportBad = opts.reportBad ?? 20;
  const file = opts.output ? await AlertFile.open(opts.output, { namespace: detector.namespace, instance: detector.instance }) : undefined;
  const tally = new RunTally(detector, { file, metrics: opts.metrics });
  tally.follower.start();

  let errors: WriteStream | undefined;
  if (opts.errorsFile) errors = createWriteStream(opts.errorsFile, { flags: 'w' });
  let bytes = 0;
  const progress = createProgress({ total: opts.inputBytes, stream: log, quiet: opts.quiet });
  const showProgress = () => progress.update({ done: bytes, transactions: tally.submitted, bad: tally.bad, alerts: tally.follower.alerts });
  let batch: Transaction[] = [];

  const submit = async () => {
    if (batch.length === 0) return;
    const list = batch;
    batch = [];
    if (opts.rate) {
      const due = tally.started + (tally.submitted / opts.rate) * 1000;
      if (due > Date.now()) await sleep(due - Date.now());
    }
    await tally.submit(list);
    showProgress();
  };

  opts.input.on('data', (chunk: Buffer | string) => (bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length));
  const lines = createInterface({ input: opts.input, crlfDelay: Infinity });
  let lineNo = 0;
  let interrupted = false;
  try {
    for await (const text of lines) {
      lineNo++;
      if (opts.signal?.aborted) {
        interrupted = true;
        break;
      }
      if (text.trim() === '') continue;
      tally.read++;
      try {
        batch.push(parseTransactionLine(text, lineNo));
      } catch (err) {
        if (!(err instanceof InvalidTransactionError)) throw err;
        tally.badInput(err);
        if (!opts.quiet && tally.bad <= reportBad) log.write(`[fraud] bad input, skipped: ${err.message}\n`);
        if (!opts.quiet && tally.bad === reportBad + 1) log.write('[fraud] more bad input: counted, listed in the summary\n');
        errors?.write(JSON.stringify({ line: lineNo, error: err.reason, text: text.length > 1000 ? `${text.slice(0, 1000)}…` : text }) + '\n');
      }
      if (batch.length >= batchSize) await submit();
    }
    if (!interrupted) await submit();
    const elapsedMs = await tally.settle(opts.drainTimeoutMs ?? 600_000);
    if (file && !interrupted) await file.finish();
    showProgress();
    return tally.summary(opts.source, elapsedMs, opts.output, interrupted);
  } finally {
    progress.stop();
    lines.close();
    await tally.follower.stop().catch(() => {});
    await file?.close();
    if (errors) await new Promise<void>((r) => errors!.end(() => r()));
  }
}
