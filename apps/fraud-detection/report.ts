/**
 * Operator output: the progress bar of a long run (a plain line every few
 * seconds when stderr is not a terminal), bad-input lines, and the summary
 * table at the end.
 */
import { SingleBar } from 'cli-progress';
import { RULES } from './rules';
import type { OutputCounts } from './follower';

/** Where operator output goes: stderr, or any writable (a terminal gets a progress bar). */
export type LogStream = NodeJS.WritableStream & { isTTY?: boolean };

export interface ProgressSnapshot {
  /** Input consumed so far, in the unit of `total` (bytes of a file). */
  done: number;
  transactions: number;
  bad: number;
  alerts: number;
}

export interface Progress {
  update(s: ProgressSnapshot): void;
  stop(): void;
}

const num = (n: number) => Math.round(n).toLocaleString('en-US');

/** A progress display on `stream` (stderr): a bar on a terminal, a line every `everyMs` otherwise; `quiet`: nothing. */
export function createProgress(opts: { total?: number; stream?: LogStream; quiet?: boolean; everyMs?: number }): Progress {
  const stream = opts.stream ?? process.stderr;
  const started = Date.now();
  const rate = (tx: number) => num(tx / Math.max(0.001, (Date.now() - started) / 1000));
  if (opts.quiet) return { update: () => {}, stop: () => {} };
  if (stream.isTTY) {
    const known = opts.total !== undefined && opts.total > 0;
    const bar = new SingleBar({
      stream,
      hideCursor: true,
      barsize: 30,
      fps: 5,
      format: known
        ? 'fraud |{bar}| {percentage}% | {tx} tx | {rate} tx/s | {alerts} alerts | {bad} bad | ETA {eta_formatted}'
        : 'fraud | {tx} tx | {rate} tx/s | {alerts} alerts | {bad} bad | {duration_formatted}',
    });
    bar.start(known ? opts.total! : 1, 0, { tx: '0', rate: '0', alerts: '0', bad: '0' });
    return {
      update: (s) => bar.update(known ? Math.min(s.done, opts.total!) : 0, { tx: num(s.transactions), rate: rate(s.transactions), alerts: num(s.alerts), bad: num(s.bad) }),
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update: (s) => {
      const now = Date.now();
      if (now - last < (opts.everyMs ?? 2_000)) return;
      last = now;
      const pct = opts.total ? ` (${Math.min(100, Math.floor((s.done / opts.total) * 100))}%)` : '';
      stream.write(`[fraud] ${num(s.transactions)} tx${pct}, ${rate(s.transactions)} tx/s, ${num(s.alerts)} alerts, ${num(s.bad)} bad\n`);
    },
    stop: () => {},
  };
}

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function latencySummary(ms: readonly number[]): LatencySummary | undefined {
  if (ms.length === 0) return undefined;
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return { count: sorted.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[sorted.length - 1]! };
}

export interface BadInput {
  /** `line 12` or `entry 1700000000000-0`. */
  where: string;
  reason: string;
}

export interface RunSummary {
  source: string;
  /** Input lines or stream entries read (blank lines not counted). */
  read: number;
  transactions: number;
  bad: number;
  /** The first bad inputs (all are counted in `bad`). */
  badSamples: BadInput[];
  accounts: number;
  counts: OutputCounts;
  /** Alerts in the alerts file (earlier runs' included), when there is one. */
  alertsInFile?: number;
  output?: string;
  elapsedMs: number;
  /** Transactions per second, from the first submit until all were committed. */
  throughput: number;
  latency?: LatencySummary;
  interrupted: boolean;
}

/** Plain-text table rows: first column left-aligned, others right-aligned. */
export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => '  ' + r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('   ').trimEnd());
}

export function formatSummary(s: RunSummary): string {
  const alerts = RULES.reduce((n, r) => n + s.counts.alerts[r], 0);
  const rows: string[][] = [
    ['read', num(s.read)],
    ['transactions submitted', num(s.transactions)],
    ['bad input (skipped)', num(s.bad)],
    ['accounts', num(s.accounts)],
    ['late (beyond grace)', num(s.counts.late)],
    ...RULES.map((r) => [`alerts: ${r}`, num(s.counts.alerts[r])]),
    ['alerts (this run)', num(alerts)],
    ['accounts → watch / → blocked', `${num(s.counts.status.watch)} / ${num(s.counts.status.blocked)}`],
  ];
  if (s.output !== undefined) rows.push(['alerts in the file', num(s.alertsInFile ?? 0)]);
  rows.push(['elapsed', `${(s.elapsedMs / 1000).toFixed(1)} s`], ['throughput', `${num(s.throughput)} tx/s`]);
  if (s.latency) rows.push(['alert latency p50 / p95 / p99 / max', `${num(s.latency.p50)} / ${num(s.latency.p95)} / ${num(s.latency.p99)} / ${num(s.latency.max)} ms`]);
  const lines = [`fraud-detection: ${s.interrupted ? 'interrupted' : 'done'}`, `  input   ${s.source}`];
  if (s.output !== undefined) lines.push(`  alerts  ${s.output}`);
  lines.push(...table(rows));
  if (s.bad > 0) {
    lines.push('', `bad input (${num(s.bad)}; ${s.badSamples.length < s.bad ? `first ${s.badSamples.length}` : 'all'}):`);
    for (const b of s.badSamples) lines.push(`  ${b.where}: ${b.reason}`);
  }
  return lines.join('\n');
}
