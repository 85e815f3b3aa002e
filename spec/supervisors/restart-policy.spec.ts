import { InvalidOptionError } from '../../persistence';
import { backoffMs, resolveRestartPolicy, RestartIntensity } from '../../supervisors';

describe('supervisors: restart policy', () => {
  it('resolves defaults and names the wrong option', () => {
    expect(resolveRestartPolicy(undefined)).toEqual({
      maxRestarts: 3,
      withinMs: 10_000,
      backoff: { initialMs: 50, maxMs: 5_000, randomFactor: 0.2 },
      onExhausted: 'dead-letter',
    });
    expect(() => resolveRestartPolicy({ maxRestarts: -1 })).toThrow(InvalidOptionError);
    expect(() => resolveRestartPolicy({ maxRestarts: -1 })).toThrow(/supervision.maxRestarts: expected an integer >= 0, received -1/);
    expect(() => resolveRestartPolicy({ onExhausted: 'panic' as never })).toThrow(/onExhausted/);
    expect(() => resolveRestartPolicy({ backoff: { initialMs: 100, maxMs: 10 } })).toThrow(/backoff.maxMs/);
  });

  it('doubles the backoff up to its ceiling, with bounded jitter', () => {
    const p = resolveRestartPolicy({ backoff: { initialMs: 10, maxMs: 50, randomFactor: 0 } });
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(p, n))).toEqual([10, 20, 40, 50, 50]);
    const j = resolveRestartPolicy({ backoff: { initialMs: 100, maxMs: 1_000, randomFactor: 0.5 } });
    expect(backoffMs(j, 1, () => 1)).toBe(150);
    expect(backoffMs(j, 1, () => 0)).toBe(100);
  });

  it('allows maxRestarts within the window, then refuses until old restarts leave it', () => {
    let now = 0;
    const intensity = new RestartIntensity(resolveRestartPolicy({ maxRestarts: 2, withinMs: 1_000 }), () => now);
    expect(intensity.tryRestart()).toBe(true);
    now = 100;
    expect(intensity.tryRestart()).toBe(true);
    now = 900;
    expect(intensity.tryRestart()).toBe(false);
    now = 1_001;
    expect(intensity.tryRestart()).toBe(true);
  });
});
