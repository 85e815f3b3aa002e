/**
 * windowedAggregate as an actor type on real Redis: window results and late
 * events come out as outputs exactly once, window state survives closing the
 * system and rehydrating the key in a new one, idleCloseMs flushes through a
 * durable timer, and a bad item is dead-lettered without changing anything.
 */
import { assign, setup } from 'xstate';
import { defineActor, EventDeadLetteredError, windowedAggregate, windowOperator, type ActorSystem, type WindowState } from '../../index';
import { uniqueNamespace } from '../helpers/redis';
import { collectOutputs, systems } from '../helpers/system';

const sys = systems();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Tick = { type: 'tick'; n: number; ts: number };
const n = (e: Tick) => e.n;

const clicks = defineActor({
  type: 'clicks',
  machine: windowedAggregate({ window: { kind: 'tumbling', sizeMs: 1_000 }, graceMs: 500, value: n, aggregate: 'sum' }),
  snapshotEvery: 3,
});
const visits = defineActor({
  type: 'visits',
  machine: windowedAggregate({ window: { kind: 'session', gapMs: 100 }, graceMs: 200, value: n, aggregate: 'sum' }),
  snapshotEvery: 2,
});
const IDLE_MS = 1_000;
const idle = defineActor({
  type: 'idle',
  machine: windowedAggregate({ window: { kind: 'tumbling', sizeMs: 10_000 }, value: n, aggregate: 'sum', idleCloseMs: IDLE_MS }),
});

const tick = (type: string, key: string, ts: number, value: number, id?: string) => ({ type, key, event: { type: 'tick', n: value }, ts, ...(id ? { id } : {}) });

/** All outputs (waiting up to `timeoutMs` for more than `expected`), as [key, event] pairs. */
async function outputsOf(system: ActorSystem, expected: number, timeoutMs = 1_000) {
  await system.drain();
  const all = await collectOutputs(system, expected + 1, timeoutMs);
  return all.map((o) => [o.key, o.event] as const);
}

async function sendVisits(system: ActorSystem, items: [ts: number, value: number][]): Promise<void> {
  await system.sendMany(items.map(([ts, v]) => tick('visits', 'v1', ts, v)));
  await system.drain();
}

async function windowState(system: ActorSystem, type: string, key: string): Promise<WindowState> {
  return (await system.get(type, key))!.context as unknown as WindowState;
}

describe('windowedAggregate', () => {
  it('emits each closed window once and each late event once, as outputs; a duplicate send counts once', async () => {
    const system = await sys.create([clicks]);
    await system.sendMany([
      tick('clicks', 'u1', 100, 1),
      tick('clicks', 'u1', 900, 2),
      tick('clicks', 'u1', 1_200, 4), // watermark 1200 < 1000 + 500: [0,1000) stays open
      tick('clicks', 'u1', 950, 8, 'late-but-in-grace'), // counted in [0,1000)
      tick('clicks', 'u1', 950, 8, 'late-but-in-grace'), // the same id again: applied once
      tick('clicks', 'u1', 1_500, 16), // [0,1000) closes: 1 + 2 + 8
      tick('clicks', 'u1', 999, 32), // beyond grace: late
      tick('clicks', 'u1', 2_600, 64), // [1000,2000) closes: 4 + 16
      tick('clicks', 'u2', 5_000, 1),
      tick('clicks', 'u2', 7_000, 1), // [5000,6000) closes
    ]);
    const out = await outputsOf(system, 4);
    const of = (key: string) => out.filter(([k]) => k === key).map(([, e]) => e);
    expect(of('u1')).toEqual([
      { type: 'window.result', start: 0, end: 1_000, count: 3, value: 11 },
      { type: 'window.late', event: expect.objectContaining({ type: 'tick', n: 32, ts: 999 }) },
      { type: 'window.result', start: 1_000, end: 2_000, count: 2, value: 20 },
    ]);
    expect(of('u2')).toEqual([{ type: 'window.result', start: 5_000, end: 6_000, count: 1, value: 1 }]);
    expect(out).toHaveLength(4);
    // The context shows the watermark and the open windows.
    const u1 = await system.get('clicks', 'u1');
    expect(u1?.seq).toBe(7);
    expect(u1?.context).toEqual({ watermark: 2_600, closedTo: 2_100, windows: [{ start: 2_000, end: 3_000, count: 1, acc: 64 }] });
  });

  it('keeps window state across a restart: a session bridged after rehydration in a new system', async () => {
    const namespace = uniqueNamespace('windows');
    const first = await sys.create([visits], { namespace });
    await sendVisits(first, [
      [0, 1], // [0,100)
      [180, 2], // [180,280): apart
    ]);
    const before = await windowState(first, 'visits', 'v1');
    expect(before.watermark).toBe(180);
    expect(before.windows.map((w) => [w.start, w.end, w.count])).toEqual([
      [0, 100, 1],
      [180, 280, 1],
    ]);
    await first.close();

    const second = await sys.create([visits], { namespace });
    expect(await windowState(second, 'visits', 'v1')).toEqual(before);
    await sendVisits(second, [
      [90, 4], // [90,190) bridges both: [0,280)
      [600, 8], // watermark 600 - 200 = 400: [0,280) closes
      [250, 16], // would rejoin the emitted session: late
    ]);
    const out = await outputsOf(second, 2);
    expect(out.map(([, e]) => e)).toEqual([
      { type: 'window.result', start: 0, end: 280, count: 3, value: 7 },
      { type: 'window.late', event: expect.objectContaining({ n: 16, ts: 250 }) },
    ]);
    const after = await second.get('visits', 'v1');
    expect(after?.context).toEqual({ watermark: 600, closedTo: 400, sessionEnd: 280, windows: [{ start: 600, end: 700, count: 1, acc: 8 }] });
    // The state equals the replay of the journal from scratch.
    expect(await second.replay('visits', 'v1', { toSeq: 5 })).toEqual(after);
  });

  it('idleCloseMs: a durable timer, re-armed by every event, flushes the open windows once', async () => {
    const system = await sys.create([idle]);
    await system.sendMany([tick('idle', 'k', 1_000, 1), tick('idle', 'k', 2_000, 2), tick('idle', 'k', 3_000, 3)]);
    const [first] = await collectOutputs(system, 1, IDLE_MS + 10_000);
    expect(first?.event).toEqual({ type: 'window.result', start: 0, end: 10_000, count: 3, value: 6 });
    await sleep(IDLE_MS + 500);
    // One firing: each event re-armed the same timer; its event time is the last event's ts + idleCloseMs.
    const journal = await system.journal('idle', 'k');
    expect(journal.map((e) => [e.event.type, e.ts])).toEqual([
      ['tick', 1_000],
      ['tick', 2_000],
      ['tick', 3_000],
      [`xstate.after.${IDLE_MS}.windowedAggregate.open`, 3_000 + IDLE_MS],
    ]);
    expect(await windowState(system, 'idle', 'k')).toEqual({ watermark: 3_000, closedTo: 10_000, windows: [] });

    // The flushed window is final: an event of it is late. A later event opens a window and re-arms the timer.
    await system.sendMany([tick('idle', 'k', 5_000, 4), tick('idle', 'k', 12_000, 5)]);
    const all = await collectOutputs(system, 3, IDLE_MS + 10_000);
    expect(all.map((o) => o.event)).toEqual([
      { type: 'window.result', start: 0, end: 10_000, count: 3, value: 6 },
      { type: 'window.late', event: expect.objectContaining({ n: 4, ts: 5_000 }) },
      { type: 'window.result', start: 10_000, end: 20_000, count: 1, value: 5 },
    ]);
    await sleep(300);
    expect(await outputsOf(system, 3, 300)).toHaveLength(3);
  });

  it('dead-letters an event whose value is not a finite number at once, changing nothing', async () => {
    const system = await sys.create([clicks]);
    await system.ask('clicks', 'b', { type: 'tick', n: 1 }, { ts: 10 });
    const bad = system.ask('clicks', 'b', { type: 'tick', n: 'many' }, { ts: 20 });
    await expect(bad).rejects.toThrow(EventDeadLetteredError);
    await expect(bad).rejects.toThrow(/invalid window item: value must be a finite number, received "many"/);
    const letters = await system.deadLetters().list();
    expect(letters.map((l) => [l.key, l.event.n, l.attempts])).toEqual([['b', 'many', 1]]);
    expect(letters[0]!.error.message).toMatch(/value must be a finite number/);
    const state = await system.get('clicks', 'b');
    expect(state?.seq).toBe(1);
    expect(state?.context).toEqual({ watermark: 10, closedTo: -490, windows: [{ start: 0, end: 1_000, count: 1, acc: 1 }] });
  });

  it('a bad item is terminal also in a machine of your own that uses the window operator: dead-lettered at once, no restarts', async () => {
    const op = windowOperator<number>({ window: { kind: 'tumbling', sizeMs: 1_000 }, aggregate: 'sum' });
    const own = defineActor({
      type: 'own-window',
      machine: setup({ types: { context: {} as { w: WindowState }, events: {} as { type: 'v'; n: number; ts: number } } }).createMachine({
        context: () => ({ w: op.init() }),
        on: { v: { actions: assign({ w: ({ context, event }) => op.add(context.w, { ts: event.ts, value: event.n }).state }) } },
      }),
      supervision: { maxRestarts: 3, backoff: { initialMs: 5, maxMs: 10 } },
    });
    const system = await sys.create([own]);
    const restarted: string[] = [];
    system.events.on('restarted', (e) => restarted.push(e.eventId));
    await system.send('own-window', 'k', { type: 'v', n: 1 }, { ts: 10 });
    const { id } = await system.send('own-window', 'k', { type: 'v', n: Number.NaN }, { ts: 20 });
    await system.drain();
    const letters = await system.deadLetters().list();
    expect(letters.map((l) => [l.id, l.attempts])).toEqual([[id, 1]]);
    expect(restarted).toEqual([]);
    expect((await system.get('own-window', 'k'))?.seq).toBe(1);
  });
});
