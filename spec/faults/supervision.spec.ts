/**
 * Supervision policies on real Redis: a poison event among thousands of good
 * ones, and the three final words (dead-letter, stop + resume, escalate +
 * resumePartition).
 */
import { assign, setup } from 'xstate';
import { defineActor, type ActorSystem, type SupervisionOptions } from '../../index';
import { partitionOf } from '../../mailbox';
import { systems } from '../helpers/system';

const sys = systems();

/** Throws on `poison` events while `broken` is set: the cause can be fixed during a test. */
const state = { broken: true };

function ledger(type: string, supervision: SupervisionOptions) {
  const machine = setup({
    types: { context: {} as { log: number[] }, events: {} as { type: 'add'; n: number } | { type: 'poison'; n: number } },
  }).createMachine({
    context: { log: [] },
    on: {
      add: { actions: assign({ log: ({ context, event }) => [...context.log, event.n] }) },
      poison: {
        actions: assign({
          log: ({ context, event }) => {
            if (state.broken) throw new Error(`poison ${event.n}`);
            return [...context.log, event.n];
          },
        }),
      },
    },
  });
  return defineActor({ type, machine, supervision });
}

const logOf = async (system: ActorSystem, type: string, key: string) => ((await system.get(type, key))?.context as { log: number[] } | undefined)?.log ?? [];

describe('faults: supervision', () => {
  beforeEach(() => {
    state.broken = true;
  });

  it('dead-letters a poison event after maxRestarts while the other keys go on, each event once and in order', async () => {
    const def = ledger('ledger', { maxRestarts: 3, withinMs: 60_000, backoff: { initialMs: 1_000, maxMs: 1_000, randomFactor: 0 } });
    const system = await sys.create([def], { partitions: 4 });
    const restarts: string[] = [];
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    const poisonKey = 'k7';
    const others = keys.filter((k) => k !== poisonKey);
    // What the other keys had committed when the poison was given up: read in the handler, which runs
    // before the dead-letter commit, on the same connection (so the reads come first).
    let atDeadLetter: Promise<(number | undefined)[]> | undefined;
    let deadAt = 0;
    system.events.on('restarted', (e) => restarts.push(`${e.key} #${e.attempts}`));
    system.events.on('deadLettered', () => {
      deadAt = Date.now();
      atDeadLetter = Promise.all(others.map(async (k) => (await system.get('ledger', k))?.seq));
    });
    const t0 = Date.now();
    const sends: Promise<unknown>[] = [];
    for (let n = 0; n < 100; n++) {
      for (const key of keys) {
        if (key === poisonKey && n === 10) sends.push(system.send('ledger', key, { type: 'poison', n: -1 }));
        sends.push(system.send('ledger', key, { type: 'add', n }));
      }
    }
    await Promise.all(sends);
    let othersDoneAt = 0;
    while (!othersDoneAt) {
      const seqs = await Promise.all(others.map(async (k) => (await system.get('ledger', k))?.seq));
      if (seqs.every((s) => s === 100)) othersDoneAt = Date.now();
      else await new Promise((r) => setTimeout(r, 20));
    }
    await system.drain();
    const total = Date.now() - t0;
    // No head-of-line blocking: every other key (its partition's too) was done before the poison was given up.
    expect(atDeadLetter).toBeDefined();
    expect(await atDeadLetter).toEqual(others.map(() => 100));
    expect(restarts.filter((r) => r.startsWith(`${poisonKey} `))).toEqual([`${poisonKey} #2`, `${poisonKey} #3`, `${poisonKey} #4`]);
    for (const key of keys) expect(await logOf(system, 'ledger', key)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    const dead = await system.deadLetters().list();
    expect(dead.map((d) => [d.key, d.event.type, d.attempts])).toEqual([[poisonKey, 'poison', 4]]);
    process.stdout.write(
      `supervision/poison: events=10001 keys=100 restarts=3 backoff=3x1000ms other-keys-done-after=${othersDoneAt - t0}ms poison-dead-lettered-after=${deadAt - t0}ms total=${total}ms lost=0 duplicated=0\n`,
    );
  });

  it("'stop' holds the key's later events in dead letters; resume after the fix applies them once, in order", async () => {
    const def = ledger('stopper', { maxRestarts: 1, backoff: { initialMs: 10, maxMs: 10 }, onExhausted: 'stop' });
    const system = await sys.create([def]);
    const stopped: string[] = [];
    system.events.on('stopped', (e) => stopped.push(e.key));
    await system.send('stopper', 's', { type: 'add', n: 1 });
    await system.send('stopper', 's', { type: 'poison', n: 2 });
    await system.send('stopper', 's', { type: 'add', n: 3 });
    await system.send('stopper', 's', { type: 'add', n: 4 });
    await system.send('stopper', 'other', { type: 'add', n: 1 });
    await system.drain();
    expect(stopped).toEqual(['s']);
    expect(await logOf(system, 'stopper', 's')).toEqual([1]);
    expect(await logOf(system, 'stopper', 'other')).toEqual([1]);
    const held = await system.deadLetters().list();
    expect(held.map((d) => [d.event.n, d.error.name])).toEqual([
      [2, 'Error'],
      [3, 'ActorStoppedError'],
      [4, 'ActorStoppedError'],
    ]);
    state.broken = false;
    expect(await system.resume('stopper', 's')).toEqual({ redelivered: 3 });
    await system.send('stopper', 's', { type: 'add', n: 5 });
    await system.drain();
    expect(await logOf(system, 'stopper', 's')).toEqual([1, 2, 3, 4, 5]);
    expect(await system.deadLetters().list()).toEqual([]);
    // Resuming again changes nothing: the held events are gone.
    expect(await system.resume('stopper', 's')).toEqual({ redelivered: 0 });
    await system.drain();
    expect((await system.get('stopper', 's'))?.seq).toBe(5);
  });

  it("'escalate' pauses the partition (others go on); resumePartition after the fix retries and applies once", async () => {
    const def = ledger('esc', { maxRestarts: 1, backoff: { initialMs: 10, maxMs: 10 }, onExhausted: 'escalate' });
    const system = await sys.create([def], { partitions: 4 });
    const escalated: number[] = [];
    system.events.on('escalated', (e) => escalated.push(e.partition));
    await system.send('esc', 'e', { type: 'poison', n: 1 });
    await system.send('esc', 'e', { type: 'add', n: 2 });
    while (escalated.length === 0) await new Promise((r) => setTimeout(r, 20));
    const paused = await system.pausedPartitions();
    expect(paused.map((p) => p.partition)).toEqual(escalated);
    // Keys of other partitions are still processed.
    let other = 0;
    while (partitionOf('esc', `o${other}`, 4) === escalated[0]) other++;
    const state2 = await system.ask('esc', `o${other}`, { type: 'add', n: 9 });
    expect(state2.context).toEqual({ log: [9] });
    expect(await logOf(system, 'esc', 'e')).toEqual([]);
    state.broken = false;
    expect(await system.resumePartition(escalated[0]!)).toBe(true);
    await system.drain();
    expect(await logOf(system, 'esc', 'e')).toEqual([1, 2]);
    expect(await system.pausedPartitions()).toEqual([]);
    expect(await system.deadLetters().list()).toEqual([]);
  });

  it('retry() of a dead letter after the fix applies it exactly once', async () => {
    const def = ledger('retry', { maxRestarts: 0 });
    const system = await sys.create([def]);
    const { id } = await system.send('retry', 'r', { type: 'poison', n: 1 });
    await system.drain();
    expect(await logOf(system, 'retry', 'r')).toEqual([]);
    state.broken = false;
    await system.deadLetters().retry(id);
    await expect(system.deadLetters().retry(id)).rejects.toThrow(/no dead letter/);
    await system.drain();
    expect(await logOf(system, 'retry', 'r')).toEqual([1]);
    expect((await system.journal('retry', 'r')).map((e) => e.id)).toEqual([expect.stringMatching(new RegExp(`^${id}~retry~`))]);
  });
});
