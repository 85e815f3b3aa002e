/**
 * The stream-table join on real Redis: the enrichment example (machine status
 * table + sensor readings stream), the three onMissing policies, latest vs
 * event-time versioning with a grace period, held events released by a
 * durable timer across a restart, and the pure operator's bounds.
 */
import { Redis } from 'ioredis';
import {
  defineActor,
  InvalidOptionError,
  JOIN_TICK_EVENT,
  streamTableJoin,
  streamTableJoinOperator,
  type ActorSystem,
  type JoinEvent,
  type JoinState,
  type StreamTableJoinOptions,
} from '../../index';
import { HOLD_MS, runEnrichmentExample, T0, type EnrichedReading } from '../../apps/examples/enrichment';
import { redisUrl, uniqueNamespace } from '../helpers/redis';
import { collectOutputs, systems } from '../helpers/system';

const sys = systems();

type Status = { type: 'status'; s: string; ts: number };
type Reading = { type: 'reading'; n: number; ts: number };
type Out = { type: string; n: number; s: string | null; reason?: string };

/** A join of `status` (table, deleted by `gone`) and `reading` (stream) whose outputs are `{ n, s }`. */
function joinActor(type: string, opts: Omit<StreamTableJoinOptions<Reading, Status, string, Out>, 'table' | 'stream' | 'enrich'> = {}) {
  return defineActor({
    type,
    machine: streamTableJoin<Reading, Status, string, Out>({
      table: { event: 'status', select: (e) => e.s, delete: 'gone' },
      stream: { event: 'reading' },
      enrich: (r, s, meta) => ({ type: s === undefined ? 'unenriched' : 'enriched', n: r.n, s: s ?? null, ...(s === undefined ? { reason: meta.reason } : {}) }),
      ...opts,
    }),
  });
}

async function sendAll(system: ActorSystem, type: string, key: string, events: ({ type: string; ts: number } & Record<string, unknown>)[]) {
  for (const { ts, ...event } of events) await system.send(type, key, event, { ts });
}

const outputsOf = async (system: ActorSystem, count: number, timeoutMs = 5_000) =>
  (await collectOutputs(system, count, timeoutMs)).map((o) => [o.key, (o.event as unknown as Out).n, (o.event as unknown as Out).s, (o.event as unknown as Out).reason ?? null]);

describe('stream-table join', () => {
  it('the enrichment example: readings enriched with the status of their event time, held ones released or given up', async () => {
    const ns = uniqueNamespace('enrich');
    const lines: string[] = [];
    const outputs = await runEnrichmentExample({ redisUrl: redisUrl(), namespace: ns, print: (l) => lines.push(l) });
    const byKey = (key: string) =>
      outputs
        .filter((o) => o.key === key)
        .map((o) => {
          const e = o.event as unknown as EnrichedReading;
          return [e.value, e.ts - T0, e.status, e.statusSince === null ? null : e.statusSince - T0, e.reason ?? null];
        });
    expect(byKey('m1')).toEqual([
      [71, 1_000, 'running', 0, null],
      [64, 3_000, 'maintenance', 2_000, null],
      [70, 1_500, 'running', 0, null], // arrived after the maintenance update, joined the status of its own time
    ]);
    expect(byKey('m2')).toEqual([
      [0.5, 500, 'running', 100, null], // held until the status came
      [0.4, 50, null, null, 'expired'], // no status of its time: given up after HOLD_MS
    ]);
    expect(byKey('m3')).toEqual([[12, 700, null, null, 'expired']]);
    expect(byKey('m4')).toEqual([
      [20, 3_000, 'stopped', 0, null],
      [21, 5_000, null, null, 'expired'], // after the tombstone
    ]);
    expect(new Set(outputs.map((o) => o.id)).size).toBe(outputs.length);
    expect(lines.some((l) => /m1 +temp +70 at \+1500 ms -> running/.test(l))).toBe(true);
    expect(lines).toContain('m2: {"enriched":1,"unenriched":1,"dropped":0}');
    // The example deleted its namespace.
    const r = new Redis(redisUrl());
    const [, left] = await r.scan('0', 'MATCH', `*{${ns}[:}]*`, 'COUNT', 10_000);
    r.disconnect();
    expect(left).toEqual([]);
    expect(HOLD_MS).toBeGreaterThan(0);
  });

  it("onMissing 'emit-unenriched', 'drop' and 'hold' (bounded by maxEvents); 'latest' joins the last value applied, a tombstone deletes it", async () => {
    const system = await sys.create([joinActor('emit'), joinActor('drop', { onMissing: 'drop' }), joinActor('hold', { onMissing: 'hold', hold: { maxEvents: 2 } })]);
    const script = [
      { type: 'reading', n: 1, ts: 10 },
      { type: 'reading', n: 2, ts: 11 },
      { type: 'reading', n: 3, ts: 12 },
      { type: 'status', s: 'up', ts: 20 },
      { type: 'reading', n: 4, ts: 21 },
      { type: 'status', s: 'old-but-last', ts: 5 }, // latest versioning: arrival order, not event time
      { type: 'reading', n: 5, ts: 22 },
      { type: 'gone', ts: 30 },
      { type: 'reading', n: 6, ts: 31 },
    ];
    for (const type of ['emit', 'drop', 'hold']) await sendAll(system, type, 'k', script);
    await system.drain();
    const all = await collectOutputs(system, 100, 1_500);
    const of = (type: string) => all.filter((o) => o.type === type).map((o) => [(o.event as unknown as Out).n, (o.event as unknown as Out).s, (o.event as unknown as Out).reason ?? null]);
    expect(of('emit')).toEqual([
      [1, null, 'missing'],
      [2, null, 'missing'],
      [3, null, 'missing'],
      [4, 'up', null],
      [5, 'old-but-last', null],
      [6, null, 'missing'],
    ]);
    expect(of('drop')).toEqual([
      [4, 'up', null],
      [5, 'old-but-last', null],
    ]);
    // Hold: at most 2 held; the third pushes the oldest out (given up); the status releases the others in order.
    expect(of('hold')).toEqual([
      [1, null, 'expired'],
      [2, 'up', null],
      [3, 'up', null],
      [4, 'up', null],
      [5, 'old-but-last', null],
    ]);
    const hold = (await system.get('hold', 'k'))!.context as unknown as JoinState<string, Reading>;
    expect(hold.waiting.map((e) => e.n)).toEqual([6]); // after the tombstone, held again (no time bound)
    expect(hold.stats).toEqual({ enriched: 4, unenriched: 1, dropped: 0 });
    expect(((await system.get('drop', 'k'))!.context as unknown as JoinState).stats).toEqual({ enriched: 2, unenriched: 0, dropped: 4 });
    // Deterministic: replay of the journal rebuilds the same state, and verify finds every key clean.
    for (const type of ['emit', 'drop', 'hold']) {
      const state = await system.get(type, 'k');
      expect(await system.replay(type, 'k', { toSeq: state!.seq })).toEqual(state);
    }
    expect(await system.verify('hold')).toMatchObject({ checked: 1, mismatched: [], errors: [] });
  });

  it("'event-time' joins the version valid at the reading's ts; graceMs waits for a late status, released by the durable timer", async () => {
    const system = await sys.create([joinActor('et', { versioning: 'event-time' }), joinActor('grace', { versioning: 'event-time', graceMs: 400 })]);
    const script = [
      { type: 'status', s: 'A', ts: 1_000 },
      { type: 'reading', n: 1, ts: 1_500 }, // grace: waits until the watermark reaches 1 900
      { type: 'status', s: 'B', ts: 1_200 }, // a late status, valid from 1 200
      { type: 'reading', n: 2, ts: 1_100 }, // a late reading: the status of its time is A
    ];
    for (const type of ['et', 'grace']) await sendAll(system, type, 'k', script);
    await system.drain();
    const et = (await collectOutputs(system, 2, 2_000)).filter((o) => o.type === 'et').map((o) => [(o.event as unknown as Out).n, (o.event as unknown as Out).s]);
    // Without grace the reading at 1 500 joined A (B was not there yet); with grace it waits and joins B.
    expect(et).toEqual([
      [1, 'A'],
      [2, 'A'],
    ]);
    const t0 = Date.now();
    let grace: [number, string | null][] = [];
    while (grace.length < 2 && Date.now() - t0 < 5_000) {
      grace = (await collectOutputs(system, 4, 300)).filter((o) => o.type === 'grace').map((o) => [(o.event as unknown as Out).n, (o.event as unknown as Out).s]);
    }
    expect(grace).toEqual([
      [2, 'A'], // ready at once (1 100 + 400 <= watermark 1 500)
      [1, 'B'], // released by the timer when the watermark reached 1 900
    ]);
    const journal = await system.journal('grace', 'k');
    expect(journal.map((e) => e.event.type)).toEqual(['status', 'reading', 'status', 'reading', JOIN_TICK_EVENT]);
    expect(journal[4]!.event.at).toBe(1_900);
    const state = await system.get('grace', 'k');
    expect((state!.context as unknown as JoinState).waiting).toEqual([]);
    expect(await system.replay('grace', 'k', { toSeq: state!.seq })).toEqual(state);
  });

  it('a held reading survives a restart: the durable timer gives it up once, after maxMs', async () => {
    const ns = uniqueNamespace();
    const def = joinActor('j', { onMissing: 'hold', hold: { maxMs: 800 } });
    const first = await sys.create([def], { namespace: ns });
    await first.send('j', 'k', { type: 'reading', n: 1 });
    await first.drain();
    expect(((await first.get('j', 'k'))!.context as unknown as JoinState).waiting).toHaveLength(1);
    await first.close();
    const second = await sys.create([def], { namespace: ns });
    expect(await outputsOf(second, 2, 3_000)).toEqual([['k', 1, null, 'expired']]);
    const state = await second.get('j', 'k');
    expect(state!.seq).toBe(2);
    expect((state!.context as unknown as JoinState).stats).toEqual({ enriched: 0, unenriched: 1, dropped: 0 });
  });

  it('an event without a usable ts is dead-lettered at once and changes nothing; bad options are rejected', async () => {
    const system = await sys.create([joinActor('j')], { namespace: uniqueNamespace() });
    await system.send('j', 'k', { type: 'status', s: 'up' });
    await system.send('j', 'k', { type: 'reading', n: 1, ts: 'soon' });
    await system.send('j', 'k', { type: 'reading', n: 2 });
    await system.drain();
    const dead = await system.deadLetters().list();
    expect(dead.map((d) => [d.event.n, d.error.name, d.attempts])).toEqual([[1, 'TerminalActorError', 1]]);
    expect(dead[0]!.error.message).toContain("has ts \"soon\"");
    expect(await outputsOf(system, 2, 1_000)).toEqual([['k', 2, 'up', null]]);
    await expect(system.send('j', 'k', { type: JOIN_TICK_EVENT })).rejects.toThrow(/reserved/);

    const base = { table: { event: 'status' }, stream: { event: 'reading' } };
    const bad: [unknown, RegExp][] = [
      [{ ...base, stream: { event: 'status' } }, /disjoint/],
      [{ ...base, graceMs: 10 }, /graceMs/],
      [{ ...base, onMissing: 'wait' }, /onMissing/],
      [{ ...base, hold: { maxEvents: 0 } }, /hold.maxEvents/],
      [{ ...base, window: 1 }, /no such option/],
      [{ ...base, table: { event: [] } }, /table.event/],
      [{ ...base, enrich: 'x' }, /enrich/],
      [{ ...base, table: { event: 'xstate.init' } }, /reserved/],
      [{ ...base, stream: { event: '@keyflow/mail' } }, /reserved/],
    ];
    for (const [opts, message] of bad) {
      expect(() => streamTableJoin(opts as never)).toThrow(InvalidOptionError);
      expect(() => streamTableJoin(opts as never)).toThrow(message);
    }
  });
});

describe('stream-table join operator', () => {
  const ev = (type: string, ts: number, extra: Record<string, unknown> = {}) => ({ type, ts, ...extra }) as JoinEvent;

  it('keeps event-time versions by ts (same ts: later wins), bounded by historyMs and maxVersions', () => {
    const op = streamTableJoinOperator({ table: { event: 'status' }, stream: { event: 'reading' }, versioning: 'event-time', historyMs: 100, maxVersions: 3 });
    let s = op.init();
    for (const [ts, v] of [
      [10, 'a'],
      [30, 'c'],
      [20, 'b'],
      [20, 'b2'],
    ] as const)
      s = op.step(s, ev('status', ts, { v })).state;
    expect(s.versions.map((x) => [x.ts, (x.value as { v: string }).v])).toEqual([
      [10, 'a'],
      [20, 'b2'],
      [30, 'c'],
    ]);
    s = op.step(s, ev('status', 40, { v: 'd' })).state; // maxVersions 3: the oldest goes
    expect(s.versions.map((x) => x.ts)).toEqual([20, 30, 40]);
    s = op.step(s, ev('status', 135, { v: 'e' })).state; // cutoff 35: keep the version valid at 35 (30) and later
    expect(s.versions.map((x) => x.ts)).toEqual([30, 40, 135]);
    const r = op.step(s, ev('reading', 39));
    expect(r.outputs).toEqual([{ type: 'join.enriched', event: ev('reading', 39), value: { v: 'c' }, tableTs: 30 }]);
    expect(op.step(s, ev('reading', 5)).outputs).toEqual([{ type: 'join.unenriched', event: ev('reading', 5), reason: 'missing' }]);
    expect(op.step(s, ev('other', 500)).state).toBe(s);
  });

  it('arms one timer for the earliest due held event, re-arms and cancels it', () => {
    const op = streamTableJoinOperator({ table: { event: 'status' }, stream: { event: 'reading' }, onMissing: 'hold', hold: { maxMs: 100, onExpire: 'drop' } });
    let step = op.step(op.init(), ev('reading', 1_000));
    expect(step.timer).toEqual({ op: 'arm', at: 1_100, delayMs: 100 });
    step = op.step(step.state, ev('reading', 1_050)); // due later: the armed timer stays
    expect(step.timer).toBeUndefined();
    step = op.step(step.state, ev('reading', 990)); // due earlier (1 090): re-armed for the 40 ms the watermark lacks
    expect(step.timer).toEqual({ op: 'arm', at: 1_090, delayMs: 40 });
    step = op.step(step.state, ev(JOIN_TICK_EVENT, 1_030, { at: 1_090 })); // the firing: the watermark reaches 1 090
    expect(step.state.watermark).toBe(1_090);
    expect(step.state.stats.dropped).toBe(1);
    expect(step.state.waiting.map((e) => e.ts)).toEqual([1_000, 1_050]);
    expect(step.timer).toEqual({ op: 'arm', at: 1_100, delayMs: 10 });
    step = op.step(step.state, ev('reading', 2_000)); // the watermark passes 1 100 and 1 150: both given up
    expect(step.state.stats.dropped).toBe(3);
    expect(step.timer).toEqual({ op: 'arm', at: 2_100, delayMs: 100 });
    step = op.step(step.state, ev('status', 2_001, { s: 'up' }));
    expect(step.outputs).toEqual([{ type: 'join.enriched', event: ev('reading', 2_000), value: { s: 'up' }, tableTs: 2_001 }]);
    expect(step.timer).toEqual({ op: 'cancel' });
    expect(step.state).toMatchObject({ waiting: [], timerAt: null });
  });
});
