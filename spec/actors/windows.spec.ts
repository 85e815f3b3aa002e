/**
 * Window operators, pure: each kind against hand-computed expectations.
 * Every state the helper passes in is deep-frozen (an operator that mutated
 * its input would throw) and must survive a JSON round trip (it lives in
 * machine context and snapshots).
 */
import { InvalidOptionError, InvalidWindowItemError, windowOperator, type WindowOperator, type WindowResult, type WindowState } from '../../index';

type Feed = [ts: number, value: number, item?: unknown];

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** Feed items in order; `results` gathers closed windows as [start, end, count, value], `late` the late items' ts. */
function run<R>(op: WindowOperator<R>, feed: Feed[], state: WindowState = op.init()) {
  const results: [number, number, number, R][] = [];
  const late: number[] = [];
  for (const [ts, value, item] of feed) {
    const step = op.add(deepFreeze(state), { ts, value, item });
    expect(JSON.parse(JSON.stringify(step.state))).toEqual(step.state);
    results.push(...step.results.map(flat));
    if (step.late) late.push(ts);
    state = step.state;
  }
  return { results, late, state };
}

const flat = <R>(r: WindowResult<R>): [number, number, number, R] => [r.start, r.end, r.count, r.value];

describe('window operators', () => {
  describe('tumbling (time)', () => {
    const op = windowOperator({ window: { kind: 'tumbling', sizeMs: 10 }, aggregate: 'sum' });

    it('closes [start, end) when the watermark reaches end, once, in order; an event of a closed window is late', () => {
      expect(op.watermark(op.init())).toBe(-Infinity);
      const { results, late, state } = run(op, [
        [1, 1],
        [4, 2],
        [10, 3], // watermark 10: [0,10) closes
        [15, 4],
        [9, 100], // [0,10) closed: late, not counted
        [25, 5], // watermark 25: [10,20) closes
      ]);
      expect(results).toEqual([
        [0, 10, 2, 3],
        [10, 20, 2, 7],
      ]);
      expect(late).toEqual([9]);
      expect(op.watermark(state)).toBe(25);
      expect(op.open(state).map(flat)).toEqual([[20, 30, 1, 5]]);
      // Only the open window is kept.
      expect(state.windows).toHaveLength(1);
      const flushed = op.flush(state);
      expect(flushed.results.map(flat)).toEqual([[20, 30, 1, 5]]);
      expect(flushed.state.windows).toEqual([]);
    });

    it('accepts a late event within grace, drops one beyond it', () => {
      const g = windowOperator({ window: { kind: 'tumbling', sizeMs: 10 }, graceMs: 5, aggregate: 'count' });
      const { results, late } = run(g, [
        [2, 1],
        [11, 1], // watermark 11 < 10 + 5: [0,10) still open
        [8, 1], // late but within grace: counted in [0,10)
        [15, 1], // watermark 15 = 10 + 5: [0,10) closes with 2 and 8
        [9, 1], // beyond grace: late
        [30, 1], // closes [10,20) with 11 and 15
      ]);
      expect(results).toEqual([
        [0, 10, 2, 2],
        [10, 20, 2, 2],
      ]);
      expect(late).toEqual([9]);
    });

    it('after a flush, events of the flushed windows are late (a window is emitted once)', () => {
      let { state } = run(op, [[15, 1]]);
      const flushed = op.flush(state);
      expect(flushed.results.map(flat)).toEqual([[10, 20, 1, 1]]);
      const after = run(op, [
        [17, 1],
        [21, 2],
      ], flushed.state);
      expect(after.late).toEqual([17]);
      state = after.state;
      expect(op.open(state).map(flat)).toEqual([[20, 30, 1, 2]]);
      expect(op.flush(op.init()).results).toEqual([]);
    });

    it('advance moves the watermark forward only and closes what it passes', () => {
      const { state } = run(op, [[3, 1], [12, 2]]);
      const a = op.advance(state, 20);
      expect(a.results.map(flat)).toEqual([[10, 20, 1, 2]]);
      expect(op.watermark(a.state)).toBe(20);
      const b = op.advance(a.state, 5);
      expect(b.results).toEqual([]);
      expect(op.watermark(b.state)).toBe(20);
    });
  });

  describe('hopping (time)', () => {
    it('puts each event in every window [k·hop, k·hop + size) containing it, aligned to epoch 0', () => {
      const op = windowOperator({ window: { kind: 'hopping', sizeMs: 10, hopMs: 5 }, aggregate: 'count' });
      const { results, late, state } = run(op, [
        [1, 1], // [-5,5) [0,10)
        [6, 1], // [0,10) [5,15); watermark 6 closes [-5,5)
        [12, 1], // [5,15) [10,20); closes [0,10)
        [17, 1], // [10,20) [15,25); closes [5,15)
        [3, 1], // [-5,5) and [0,10) closed: late
      ]);
      expect(results).toEqual([
        [-5, 5, 1, 1],
        [0, 10, 2, 2],
        [5, 15, 2, 2],
      ]);
      expect(late).toEqual([3]);
      expect(op.flush(state).results.map(flat)).toEqual([
        [10, 20, 2, 2],
        [15, 25, 1, 1],
      ]);
    });

    it('with grace, counts an out-of-order event in the windows still open and skips closed ones', () => {
      const op = windowOperator({ window: { kind: 'hopping', sizeMs: 10, hopMs: 5 }, graceMs: 3, aggregate: 'sum' });
      const { results, late, state } = run(op, [
        [10, 1], // [5,15) [10,20)
        [17, 2], // [10,20) [15,25); watermark 17 - 3 = 14: nothing ends by 14
        [18, 4], // [10,20) [15,25); 15: [5,15) closes with 1
        [9, 8], // [0,10) closed (10 <= 15); [5,15) closed: late
        [14, 16], // [5,15) closed; [10,20) open: counted there only
      ]);
      expect(results).toEqual([[5, 15, 1, 1]]);
      expect(late).toEqual([9]);
      expect(op.open(state).map(flat)).toEqual([
        [10, 20, 4, 23],
        [15, 25, 2, 6],
      ]);
    });
  });

  describe('sliding', () => {
    it('one trailing window (t - size, t] = [t - size + 1, t + 1) per distinct event time, with every event in it', () => {
      const op = windowOperator({ window: { kind: 'sliding', sizeMs: 10 }, aggregate: 'sum' });
      const { results, late, state } = run(op, [
        [1, 1], // [-8,2): 1
        [5, 2], // [-4,6): 1+2; watermark 5 closes [-8,2)
        [5, 4], // same window [-4,6): +4
        [11, 8], // [2,12): 5,5,11; closes [-4,6)
        [20, 16], // [11,21): 11,20; closes [2,12)
        [3, 32], // its window [-6,4) is closed and no open window contains 3: late
      ]);
      expect(results).toEqual([
        [-8, 2, 1, 1],
        [-4, 6, 3, 7],
        [2, 12, 3, 14],
      ]);
      expect(late).toEqual([3]);
      expect(op.flush(state).results.map(flat)).toEqual([[11, 21, 2, 24]]);
      // Kept: only events a window that can still open may contain (ts > 20 - 10).
      expect(state.items!.map((i) => i.ts)).toEqual([11, 20]);
    });

    it('counts an event arriving within grace in every open window containing it, also when its own window has closed', () => {
      const op = windowOperator({ window: { kind: 'sliding', sizeMs: 10 }, graceMs: 5, aggregate: 'count' });
      const { results, late, state } = run(op, [
        [10, 1], // [1,11)
        [14, 1], // [5,15): 10,14; watermark 14 - 5 = 9
        [8, 1], // own [-1,9) closed (9 <= 9); counted in [1,11) and [5,15)
        [16, 1], // [7,17): 8,10,14,16; 11 -> [1,11) closes with 10, 8
        [2, 1], // no open window contains 2, its own [-7,3) is closed: late
      ]);
      expect(results).toEqual([[1, 11, 2, 2]]);
      expect(late).toEqual([2]);
      expect(op.open(state).map(flat)).toEqual([
        [5, 15, 3, 3],
        [7, 17, 4, 4],
      ]);
    });

    it('keeps state bounded on a long in-order stream', () => {
      const op = windowOperator({ window: { kind: 'sliding', sizeMs: 10 }, aggregate: 'max' });
      const { results, state } = run(
        op,
        Array.from({ length: 1_000 }, (_, i): Feed => [i, i % 7]),
      );
      expect(results).toHaveLength(999);
      expect(results[500]).toEqual([491, 501, 10, 6]);
      expect(state.windows).toHaveLength(1);
      expect(state.items!.length).toBeLessThanOrEqual(10);
    });
  });

  describe('session', () => {
    it('opens [ts, ts + gap); overlapping or touching sessions merge; a session closes at end (+ grace)', () => {
      const op = windowOperator({ window: { kind: 'session', gapMs: 10 }, aggregate: 'sum' });
      const { results, late, state } = run(op, [
        [0, 1], // [0,10)
        [5, 2], // [0,15)
        [15, 4], // touches: [0,25) (joins before the watermark closes anything)
        [40, 8], // watermark 40: [0,25) closes; [40,50)
        [24, 16], // would rejoin the emitted [0,25): late
        [45, 32], // [40,55)
      ]);
      expect(results).toEqual([[0, 25, 3, 7]]);
      expect(late).toEqual([24]);
      expect(op.open(state).map(flat)).toEqual([[40, 55, 2, 40]]);
    });

    it('an out-of-order event within grace bridges two sessions into one', () => {
      const op = windowOperator({ window: { kind: 'session', gapMs: 10 }, graceMs: 20, aggregate: 'count' });
      const { results, late, state } = run(op, [
        [0, 1], // [0,10)
        [18, 1], // [18,28): apart from [0,10)
        [9, 1], // [9,19) touches both: [0,28) with 3 events
        [60, 1], // watermark 60 - 20 = 40: [0,28) closes; [60,70)
        [27, 1], // would rejoin the emitted [0,28): late
        [35, 1], // [35,45): ends after 40, touches nothing: on time within grace
        [42, 1], // [35,52)
      ]);
      expect(results).toEqual([[0, 28, 3, 3]]);
      expect(late).toEqual([27]);
      expect(op.open(state).map(flat)).toEqual([
        [35, 52, 2, 2],
        [60, 70, 1, 1],
      ]);
      expect(state.sessionEnd).toBe(28);
    });

    it('merges a custom aggregate with its merge, and rejects a custom aggregate without merge', () => {
      const distinct = {
        init: (): string[] => [],
        add: (acc: string[], _v: number, item?: unknown) => {
          const id = (item as { user: string }).user;
          if (!acc.includes(id)) acc.push(id);
          return acc.sort();
        },
        merge: (a: string[], b: string[]) => [...new Set([...a, ...b])].sort(),
        result: (acc: string[]) => acc.join(','),
      };
      const op = windowOperator({ window: { kind: 'session', gapMs: 10 }, graceMs: 20, aggregate: distinct });
      const { state } = run(op, [
        [0, 0, { user: 'b' }],
        [18, 0, { user: 'a' }],
        [20, 0, { user: 'c' }],
        [9, 0, { user: 'b' }], // bridges [0,10) and [18,30)
      ]);
      expect(op.flush(state).results.map(flat)).toEqual([[0, 30, 4, 'a,b,c']]);
      const { merge: _merge, ...noMerge } = distinct;
      expect(() => windowOperator({ window: { kind: 'session', gapMs: 10 }, aggregate: noMerge })).toThrow(InvalidOptionError);
      expect(() => windowOperator({ window: { kind: 'session', gapMs: 10 }, aggregate: noMerge })).toThrow(/aggregate\.merge/);
      // Without sessions, merge is not needed.
      expect(windowOperator({ window: { kind: 'tumbling', sizeMs: 10 }, aggregate: noMerge }).window).toEqual({ type: 'aligned', size: 10, hop: 10 });
    });
  });

  describe('count windows', () => {
    it('tumbling { count } closes every count items; a flush emits the partial window and restarts alignment', () => {
      const op = windowOperator({ window: { kind: 'tumbling', count: 3 }, aggregate: 'sum' });
      const { results, late, state } = run(op, [
        [50, 1],
        [10, 2], // event time plays no part: never late
        [70, 3], // items 0..2: [0,3)
        [1, 4],
        [2, 5],
        [3, 6], // [3,6)
        [4, 7],
      ]);
      expect(results).toEqual([
        [0, 3, 3, 6],
        [3, 6, 3, 15],
      ]);
      expect(late).toEqual([]);
      expect(op.watermark(state)).toBe(70);
      const flushed = op.flush(state);
      expect(flushed.results.map(flat)).toEqual([[6, 7, 1, 7]]);
      const after = run(op, [
        [5, 1],
        [6, 1],
        [7, 1],
      ], flushed.state);
      expect(after.results).toEqual([[7, 10, 3, 3]]);
    });

    it('hopping { count, hop }: windows of count items starting every hop items', () => {
      const op = windowOperator({ window: { kind: 'hopping', count: 4, hop: 2 }, aggregate: 'mean' });
      const { results, state } = run(
        op,
        [1, 2, 3, 4, 5, 6].map((v, i): Feed => [i, v]),
      );
      // [0,4): 1..4 -> 2.5; [2,6): 3..6 -> 4.5; [4,8) open with 5, 6.
      expect(results).toEqual([
        [0, 4, 4, 2.5],
        [2, 6, 4, 4.5],
      ]);
      expect(op.open(state).map(flat)).toEqual([[4, 8, 2, 5.5]]);
      expect(op.flush(state).results.map(flat)).toEqual([[4, 6, 2, 5.5]]);
    });
  });

  describe('aggregates', () => {
    it('count, sum, mean, min, max', () => {
      const feed: Feed[] = [
        [1, 4],
        [2, -2],
        [3, 7],
        [10, 0],
      ];
      const of = (aggregate: 'count' | 'sum' | 'mean' | 'min' | 'max') => run(windowOperator({ window: { kind: 'tumbling', sizeMs: 10 }, aggregate }), feed).results;
      expect(of('count')).toEqual([[0, 10, 3, 3]]);
      expect(of('sum')).toEqual([[0, 10, 3, 9]]);
      expect(of('mean')).toEqual([[0, 10, 3, 3]]);
      expect(of('min')).toEqual([[0, 10, 3, -2]]);
      expect(of('max')).toEqual([[0, 10, 3, 7]]);
    });

    it('a custom aggregate sees each item once per window, in arrival order, on copies of its accumulator', () => {
      const trail = {
        init: () => ({ seen: [] as string[] }),
        add: (acc: { seen: string[] }, v: number, item?: unknown) => {
          acc.seen.push(`${(item as { id: string }).id}=${v}`); // mutates: the operator passed a copy
          return acc;
        },
        result: (acc: { seen: string[] }) => acc.seen.join(' '),
      };
      const op = windowOperator({ window: { kind: 'sliding', sizeMs: 10 }, graceMs: 5, aggregate: trail });
      const { results, state } = run(op, [
        [10, 1, { id: 'a' }],
        [14, 2, { id: 'b' }],
        [8, 3, { id: 'c' }],
        [30, 4, { id: 'd' }],
      ]);
      // [5,15) was opened by b from the kept items (a), then c arrived.
      expect(results).toEqual([
        [1, 11, 2, 'a=1 c=3'],
        [5, 15, 3, 'a=1 b=2 c=3'],
      ]);
      expect(op.open(state).map(flat)).toEqual([[21, 31, 1, 'd=4']]);
    });

    it('a custom accumulator must be JSON data', () => {
      const bad = { init: () => new Set<number>(), add: (s: Set<number>) => s, result: (s: Set<number>) => s.size };
      expect(() => windowOperator({ window: { kind: 'tumbling', sizeMs: 10 }, aggregate: bad })).toThrow(/aggregate\.init/);
      const drifts = { init: () => 0, add: () => new Date() as unknown as number, result: (a: number) => a };
      const op = windowOperator({ window: { kind: 'tumbling', sizeMs: 10 }, aggregate: drifts });
      expect(() => op.add(op.init(), { ts: 1, value: 1 })).toThrow(/aggregate\.add/);
    });
  });

  describe('validation', () => {
    const bad: [string, unknown, RegExp][] = [
      ['size 0', { window: { kind: 'tumbling', sizeMs: 0 }, aggregate: 'sum' }, /option window\.sizeMs: expected an integer >= 1, received 0/],
      ['fractional size', { window: { kind: 'tumbling', sizeMs: 1.5 }, aggregate: 'sum' }, /window\.sizeMs/],
      ['missing hop', { window: { kind: 'hopping', sizeMs: 10 }, aggregate: 'sum' }, /window\.hopMs: expected an integer >= 1/],
      ['hop over size', { window: { kind: 'hopping', sizeMs: 10, hopMs: 20 }, aggregate: 'sum' }, /window\.hopMs: expected an integer <= window\.sizeMs \(10\)/],
      ['too many windows per item', { window: { kind: 'hopping', sizeMs: 100_000, hopMs: 1 }, aggregate: 'sum' }, /window\.hopMs: expected at least window\.sizeMs \/ 1000/],
      ['a field of another kind', { window: { kind: 'sliding', sizeMs: 10, hopMs: 5 }, aggregate: 'sum' }, /window\.hopMs: expected no such field/],
      ['negative gap', { window: { kind: 'session', gapMs: -1 }, aggregate: 'sum' }, /window\.gapMs/],
      ['unknown kind', { window: { kind: 'rolling', sizeMs: 10 }, aggregate: 'sum' }, /window\.kind/],
      ['no window', { aggregate: 'sum' }, /option window:/],
      ['count 0', { window: { kind: 'tumbling', count: 0 }, aggregate: 'sum' }, /window\.count/],
      ['count hop over count', { window: { kind: 'hopping', count: 3, hop: 4 }, aggregate: 'sum' }, /window\.hop: expected an integer <= window\.count/],
      ['size and count', { window: { kind: 'tumbling', sizeMs: 10, count: 3 }, aggregate: 'sum' }, /either sizeMs .* or count/],
      ['count on a session', { window: { kind: 'session', count: 3 }, aggregate: 'sum' }, /window\.count: expected no such field/],
      ['negative grace', { window: { kind: 'tumbling', sizeMs: 10 }, graceMs: -1, aggregate: 'sum' }, /option graceMs: expected an integer >= 0/],
      ['grace on a count window', { window: { kind: 'tumbling', count: 3 }, graceMs: 5, aggregate: 'sum' }, /graceMs: expected 0 or undefined for a count window/],
      ['unknown aggregate', { window: { kind: 'tumbling', sizeMs: 10 }, aggregate: 'median' }, /option aggregate:/],
      ['custom without result', { window: { kind: 'tumbling', sizeMs: 10 }, aggregate: { init: () => 0, add: () => 0 } }, /aggregate\.result: expected a function/],
      ['unknown option', { window: { kind: 'tumbling', sizeMs: 10 }, aggregate: 'sum', grace: 5 }, /option grace: expected no such option/],
    ];
    it.each(bad)('rejects %s with an InvalidOptionError naming the option', (_name, opts, message) => {
      expect(() => windowOperator(opts as never)).toThrow(InvalidOptionError);
      expect(() => windowOperator(opts as never)).toThrow(message);
    });

    it('rejects an item without a finite ts or value, and a non-finite watermark, changing nothing', () => {
      const op = windowOperator({ window: { kind: 'tumbling', sizeMs: 10 }, aggregate: 'sum' });
      const state = deepFreeze(op.add(op.init(), { ts: 1, value: 1 }).state);
      expect(() => op.add(state, { ts: Number.NaN, value: 1 })).toThrow(InvalidWindowItemError);
      expect(() => op.add(state, { ts: '5' as never, value: 1 })).toThrow(/invalid window item: ts must be a finite number, received "5"/);
      expect(() => op.add(state, { ts: 5, value: Infinity })).toThrow(/invalid window item: value must be a finite number/);
      expect(() => op.advance(state, undefined as never)).toThrow(/invalid window watermark: watermark must be a finite number/);
      expect(() => op.add({} as never, { ts: 5, value: 1 })).toThrow(/option state: expected a WindowState/);
      expect(op.open(state).map(flat)).toEqual([[0, 10, 1, 1]]);
    });
  });
});
