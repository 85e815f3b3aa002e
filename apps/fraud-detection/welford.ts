/**
 * Running mean and variance (Welford's online algorithm): one pass, constant
 * memory, numerically stable. The state is plain JSON so it lives in a
 * machine's context.
 */
export interface Welford {
  n: number;
  mean: number;
  /** Sum of squared differences from the current mean. */
  m2: number;
}

export const emptyWelford = (): Welford => ({ n: 0, mean: 0, m2: 0 });

export function welfordAdd(w: Welford, x: number): Welford {
  const n = w.n + 1;
  const delta = x - w.mean;
  const mean = w.mean + delta / n;
  return { n, mean, m2: w.m2 + delta * (x - mean) };
}

/** Sample standard deviation (0 below two values). */
export function welfordStddev(w: Welford): number {
  return w.n < 2 ? 0 : Math.sqrt(w.m2 / (w.n - 1));
}
