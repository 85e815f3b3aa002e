/**
 * Follows the detector's outputs while a run goes on: writes alerts to the
 * alerts file (with its checkpoint), counts what comes out, and measures each
 * alert's latency (from the moment its newest transaction was submitted to
 * the moment the alert was read back from the outputs stream).
 */
import type { AccountStatus, FraudOutput } from './account-machine';
import type { AlertFile } from './alerts-file';
import type { FraudDetector } from './detector';
import { RULES, type FraudAlert, type RuleName } from './rules';

export interface OutputCounts {
  alerts: Record<RuleName, number>;
  late: number;
  /** Changes of state, by the state entered. */
  status: Record<AccountStatus, number>;
}

export const emptyCounts = (): OutputCounts => ({
  alerts: Object.fromEntries(RULES.map((r) => [r, 0])) as Record<RuleName, number>,
  late: 0,
  status: { normal: 0, watch: 0, blocked: 0 },
});

/**
 * When each transaction was submitted (wall clock), for latency. Bounded: the
 * oldest entries go first beyond `max`.
 */
export class SubmitTimes {
  private readonly times = new Map<string, number>();
  constructor(private readonly max = 2_000_000) {}

  record(ids: readonly string[], at: number): void {
    for (const id of ids) {
      this.times.delete(id);
      this.times.set(id, at);
    }
    let excess = this.times.size - this.max;
    if (excess > 0) {
      for (const id of this.times.keys()) {
        this.times.delete(id);
        if (--excess === 0) break;
      }
    }
  }

  /** The latest submit time among `ids` (the transaction that completed the evidence), if known. */
  latest(ids: readonly string[]): number | undefined {
    let t: number | undefined;
    for (const id of ids) {
      const at = this.times.get(id);
      if (at !== undefined && (t === undefined || at > t)) t = at;
    }
    return t;
  }
}

export interface FollowerOptions {
  file?: AlertFile;
  submitTimes?: SubmitTimes;
  /** Called for every alert, with its latency in ms when known. */
  onAlert?: (alert: FraudAlert, latencyMs: number | undefined) => void;
  onLate?: () => void;
  onStatus?: (to: AccountStatus) => void;
  /** Latencies kept for the summary (the first ones). @default 1000000 */
  maxLatencies?: number;
  /** Flush the file at least this often (ms). @default 200 */
  flushEveryMs?: number;
}

export class OutputFollower {
  readonly counts = emptyCounts();
  readonly latencies: number[] = [];
  /** Where this follower started, and the position after the last output it handled. */
  private startFrom = 'start';
  private lastPosition: string | undefined;
  private iterator: AsyncIterator<unknown> | undefined;
  private loop: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failure: Error | undefined;
  private stopped = false;

  constructor(
    private readonly detector: FraudDetector,
    private readonly opts: FollowerOptions = {},
  ) {}

  /** Start following from the file's checkpoint (or from `from`). */
  start(from = this.opts.file?.from ?? 'start'): void {
    const file = this.opts.file;
    this.startFrom = from;
    const iterable = this.detector.outputs({ from });
    const it = iterable[Symbol.asyncIterator]();
    this.iterator = it;
    if (file) {
      this.timer = setInterval(() => void file.flush().catch((err: Error) => (this.failure ??= err)), this.opts.flushEveryMs ?? 200);
    }
    this.loop = (async () => {
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        this.handle(r.value.output, r.value.position);
      }
    })().catch((err: Error) => {
      if (!this.stopped) this.failure ??= err;
    });
  }

  private handle(output: FraudOutput, position: string): void {
    const file = this.opts.file;
    this.lastPosition = position;
    if (output.type === 'fraud.alert') {
      this.counts.alerts[output.rule] = (this.counts.alerts[output.rule] ?? 0) + 1;
      const sent = this.opts.submitTimes?.latest(output.txIds);
      const latency = sent === undefined ? undefined : Date.now() - sent;
      if (latency !== undefined && this.latencies.length < (this.opts.maxLatencies ?? 1_000_000)) this.latencies.push(latency);
      file?.add(output, position);
      this.opts.onAlert?.(output, latency);
    } else {
      file?.skip(position);
      if (output.type === 'fraud.late') {
        this.counts.late++;
        this.opts.onLate?.();
      } else if (output.type === 'fraud.status') {
        this.counts.status[output.to]++;
        this.opts.onStatus?.(output.to);
      }
    }
  }

  /** Alerts read by this follower. */
  get alerts(): number {
    return Object.values(this.counts.alerts).reduce((a, b) => a + b, 0);
  }

  /**
   * Read every output committed so far, then stop following. Call it after
   * `detector.drain()`: everything submitted is committed then. The live
   * reader stops where it is; the rest is read with `until: 'now'` (a bounded
   * read, no timeout to guess).
   */
  async caughtUp(): Promise<void> {
    this.stopped = true;
    await this.iterator?.return?.();
    await this.loop;
    if (this.failure) throw this.failure;
    for await (const r of this.detector.outputs({ from: this.lastPosition ?? this.startFrom, until: 'now' })) this.handle(r.output, r.position);
  }

  /** Stop following; the file gets a last flush (and its checkpoint). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.iterator?.return?.();
    await this.loop;
    await this.opts.file?.flush();
    if (this.failure) throw this.failure;
  }
}
