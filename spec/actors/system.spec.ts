import { assign, emit, setup } from 'xstate';
import {
  defineActor,
  EventTooLargeError,
  InvalidEventError,
  InvalidKeyError,
  InvalidOptionError,
  EventDeadLetteredError,
  NamespaceMismatchError,
  SystemClosedError,
  TerminalActorError,
  UnknownActorTypeError,
  type ActorSystem,
  type PositionedOutput,
} from '../../index';
import { account } from '../../apps/bank/account-machine';
import { Redis } from 'ioredis';
import { redisUrl, uniqueNamespace } from '../helpers/redis';
import { collectOutputs, systems } from '../helpers/system';

const sys = systems();

/** A log machine: appends every event's `n` to its context, emits one output per event. */
const logMachine = setup({
  types: { context: {} as { key: string; log: number[] }, events: {} as { type: 'add'; n: number; id: string; ts: number } | { type: 'boom' } | { type: 'fatal' } },
}).createMachine({
  context: ({ input }) => ({ key: (input as { key: string }).key, log: [] }),
  on: {
    add: { actions: [assign({ log: ({ context, event }) => [...context.log, event.n] }), emit(({ event }) => ({ type: 'added', n: event.n }))] },
    boom: { actions: assign({ log: () => { throw new Error('boom'); } }) },
    fatal: { actions: assign({ log: () => { throw new TerminalActorError('cannot ever work'); } }) },
  },
});
const log = defineActor({ type: 'log', machine: logMachine, snapshotEvery: 7, supervision: { maxRestarts: 2, backoff: { initialMs: 5, maxMs: 20 } } });

async function keysOf(ns: string): Promise<string[]> {
  const c = new Redis(redisUrl());
  try {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await c.scan(cursor, 'MATCH', `*${ns}*`, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
    return found.sort();
  } finally {
    c.disconnect();
  }
}

describe('actor system', () => {
  it('applies every key\'s events in send order, each once, across many keys', async () => {
    const system = await sys.create([log]);
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    const sends: Promise<unknown>[] = [];
    for (let n = 0; n < 50; n++) for (const key of keys) sends.push(system.send('log', key, { type: 'add', n }));
    await Promise.all(sends);
    await system.drain();
    for (const key of keys) {
      const state = await system.get('log', key);
      expect(state?.seq).toBe(50);
      expect((state?.context as { log: number[] }).log).toEqual(Array.from({ length: 50 }, (_, i) => i));
      const journal = await system.journal('log', key);
      expect(journal.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    }
  });

  it('leaves no job behind: the commits acknowledge their jobs, at light load and in bursts', async () => {
    const ns = uniqueNamespace();
    const system = await sys.create([log], { namespace: ns });
    // One at a time (a job per batch), then a burst (many jobs per batch).
    for (let n = 0; n < 5; n++) await system.ask('log', 'slow', { type: 'add', n });
    await Promise.all(Array.from({ length: 400 }, (_, n) => system.send('log', `k${n % 20}`, { type: 'add', n })));
    await system.drain();
    expect((await system.get('log', 'slow'))?.seq).toBe(5);
    const all = await keysOf(ns);
    // Queue bookkeeping stays (id counter, meta, events stream, ...); no job record, lock or list entry does.
    expect(all.filter((k) => /:q:\d+(:|$)/.test(k))).toEqual([]);
    const c = new Redis(redisUrl());
    try {
      const lists = all.filter((k) => /:q:(active|wait)$/.test(k));
      expect(await Promise.all(lists.map((k) => c.llen(k)))).toEqual(lists.map(() => 0));
    } finally {
      c.disconnect();
    }
  });

  it('keeps the job of an event waiting for its restart in progress (not acknowledged) until the event is applied', async () => {
    // Fails twice (a test-only switch, outside the machine), then works: a fresh batch's first attempt is
    // unchecked and only redone on a failure, the redo fails and parks the key for the backoff.
    let failuresLeft = 2;
    let redoFailed = false;
    const flakyMachine = setup({ types: { context: {} as { n: number } } }).createMachine({
      context: { n: 0 },
      on: {
        tick: {
          actions: assign({
            n: ({ context }) => {
              if (failuresLeft > 0) {
                failuresLeft--;
                redoFailed = failuresLeft === 0;
                throw new Error('flaky');
              }
              return context.n + 1;
            },
          }),
        },
      },
    });
    const flaky = defineActor({ type: 'flaky', machine: flakyMachine, supervision: { maxRestarts: 3, backoff: { initialMs: 1_500, maxMs: 1_500 } } });
    const ns = uniqueNamespace();
    const system = await sys.create([flaky], { namespace: ns });
    let recovered = false;
    system.events.on('recovered', () => (recovered = true));
    await system.send('flaky', 'f', { type: 'tick' });
    const activeJobs = async (): Promise<number> => {
      const lists = (await keysOf(ns)).filter((k) => /:q:active$/.test(k));
      const c = new Redis(redisUrl());
      try {
        return (await Promise.all(lists.map((k) => c.llen(k)))).reduce((a, b) => a + b, 0);
      } finally {
        c.disconnect();
      }
    };
    for (let i = 0; i < 200 && !redoFailed; i++) await new Promise((r) => setTimeout(r, 10));
    expect(redoFailed).toBe(true);
    // The attempt that parked the key has committed by now; the backoff has not passed.
    await new Promise((r) => setTimeout(r, 200));
    expect(recovered).toBe(false);
    expect(await activeJobs()).toBe(1);
    await system.drain();
    expect(recovered).toBe(true);
    expect((await system.get('flaky', 'f'))?.seq).toBe(1);
    expect(await activeJobs()).toBe(0);
  });

  it('applies a duplicate send (same id) once, and ask returns the committed state', async () => {
    const system = await sys.create([account]);
    await system.send('account', 'alice', { type: 'deposit', amount: 10 }, { id: 'dep-1' });
    await system.send('account', 'alice', { type: 'deposit', amount: 10 }, { id: 'dep-1' });
    await system.sendMany([
      { type: 'account', key: 'alice', event: { type: 'deposit', amount: 10 }, id: 'dep-1' },
      { type: 'account', key: 'alice', event: { type: 'deposit', amount: 5 }, id: 'dep-2' },
    ]);
    const after = await system.ask('account', 'alice', { type: 'withdraw', amount: 3 });
    expect(after.context.balance).toBe(12);
    expect(after.seq).toBe(3);
    // An ask whose id was applied already answers with the current state.
    const again = await system.ask('account', 'alice', { type: 'deposit', amount: 100 }, { id: 'dep-2' });
    expect(again.context.balance).toBe(12);
    expect((await system.journal('account', 'alice')).map((e) => e.id).slice(0, 2)).toEqual(['dep-1', 'dep-2']);
  });

  it('applies the event as it was when sent: changing the object afterwards changes nothing', async () => {
    const system = await sys.create([account]);
    const event = { type: 'deposit', amount: 10 };
    const sending = system.send('account', 'm', event, { id: 'm-1' });
    const items = [{ type: 'account', key: 'm', event: { type: 'deposit', amount: 5 }, id: 'm-2' }];
    const sendingMany = system.sendMany(items);
    event.amount = 1_000; // before the coalesced write has happened
    items[0]!.event.amount = 1_000;
    await Promise.all([sending, sendingMany]);
    await system.drain();
    expect((await system.get('account', 'm'))?.context.balance).toBe(15);
    expect((await system.journal('account', 'm')).map((e) => e.event.amount)).toEqual([10, 5]);
  });

  it("outputs({ until: 'now' }) ends after the outputs committed before the call", async () => {
    const system = await sys.create([account]);
    for (let i = 0; i < 30; i++) await system.send('account', `u${i % 7}`, { type: 'withdraw', amount: 1 }); // each refused: one output
    await system.drain();
    const read: string[] = [];
    for await (const out of system.outputs({ until: 'now' })) read.push(out.id);
    expect(read).toHaveLength(30);
    expect(new Set(read).size).toBe(30);
    // From a position: the rest only; from 'now': nothing.
    const firstTen: string[] = [];
    let position = '';
    for await (const out of system.outputs({ until: 'now' })) {
      firstTen.push(out.id);
      position = out.position;
      if (firstTen.length === 10) break;
    }
    const rest: string[] = [];
    for await (const out of system.outputs({ from: position, until: 'now' })) rest.push(out.id);
    expect([...firstTen, ...rest]).toEqual(read);
    const none: string[] = [];
    for await (const out of system.outputs({ from: 'now', until: 'now' })) none.push(out.id);
    expect(none).toEqual([]);
    expect(() => system.outputs({ until: 'later' as 'now' })).toThrow(InvalidOptionError);
    // outputsPosition: a concrete 'now' to continue from later.
    const position30 = await system.outputsPosition();
    await system.send('account', 'u0', { type: 'withdraw', amount: 1 });
    await system.drain();
    const after: string[] = [];
    for await (const out of system.outputs({ from: position30, until: 'now' })) after.push(out.id);
    expect(after).toHaveLength(1);
    expect(read).not.toContain(after[0]);
  });

  it('keeps idempotency ids per actor: the same id for two keys is two events', async () => {
    const system = await sys.create([account]);
    await system.send('account', 'a', { type: 'deposit', amount: 1 }, { id: 'same' });
    await system.send('account', 'b', { type: 'deposit', amount: 1 }, { id: 'same' });
    await system.drain();
    expect((await system.get('account', 'a'))?.context.balance).toBe(1);
    expect((await system.get('account', 'b'))?.context.balance).toBe(1);
  });

  it('stores a state equal to the replay of its journal from scratch, with snapshots in between', async () => {
    const system = await sys.create([log]);
    for (let n = 0; n < 30; n++) await system.send('log', 'r', { type: 'add', n });
    await system.drain();
    const state = await system.get('log', 'r');
    const replayed = await system.replay('log', 'r', { toSeq: 30 });
    expect(replayed).toEqual(state);
    const at10 = await system.replay('log', 'r', { toSeq: 10 });
    expect((at10?.context as { log: number[] }).log).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(at10?.seq).toBe(10);
    expect(await system.replay('log', 'never-seen', { toSeq: 3 })).toBeUndefined();
    expect(await system.get('log', 'never-seen')).toBeUndefined();
  });

  it('delivers every output exactly once, in commit order per key, with deterministic ids', async () => {
    const system = await sys.create([log]);
    for (let n = 0; n < 20; n++) {
      await system.send('log', 'o1', { type: 'add', n });
      await system.send('log', 'o2', { type: 'add', n: 100 + n });
    }
    await system.send('log', 'o1', { type: 'add', n: 0 }, { id: 'dup' });
    await system.send('log', 'o1', { type: 'add', n: 0 }, { id: 'dup' });
    await system.drain();
    const outputs = await collectOutputs(system, 41, 5_000);
    expect(outputs).toHaveLength(41);
    expect(new Set(outputs.map((o) => o.id)).size).toBe(41);
    const o1 = outputs.filter((o) => o.key === 'o1');
    expect(o1.map((o) => o.seq)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    expect(o1.map((o) => o.event.n)).toEqual([...Array.from({ length: 20 }, (_, i) => i), 0]);
    // A position names a stream id per partition (4 here; "/k" within a commit's outputs); resuming after one yields only what came after it.
    for (const o of outputs) expect(o.position).toMatch(/^\d+(-\d+)?(\/\d+)?(,\d+(-\d+)?(\/\d+)?){3}$/);
    const rest: unknown[] = [];
    const it = system.outputs({ from: outputs[30]!.position })[Symbol.asyncIterator]();
    for (let i = 0; i < 10; i++) rest.push((await it.next()).value);
    await it.return?.();
    expect(rest).toEqual(outputs.slice(31).map((o) => expect.objectContaining({ id: o.id })));
  });

  it('resumes at any output of a commit that wrote many: each position yields exactly the outputs after it', async () => {
    const system = await sys.create([account]);
    // One sendMany to one key: one job, one batch, one commit of 25 outputs (refused withdrawals).
    await system.sendMany(Array.from({ length: 25 }, (_, i) => ({ type: 'account', key: 'many', event: { type: 'withdraw', amount: 1 + i } })));
    await system.send('account', 'other', { type: 'withdraw', amount: 1 });
    await system.drain();
    const all: PositionedOutput[] = [];
    for await (const out of system.outputs({ until: 'now' })) all.push(out);
    expect(all).toHaveLength(26);
    const inside = all.filter((o) => o.position.includes('/'));
    expect(inside.length).toBeGreaterThanOrEqual(20); // the positions inside a commit's record are exercised
    for (let i = 0; i < all.length; i++) {
      const rest: string[] = [];
      for await (const out of system.outputs({ from: all[i]!.position, until: 'now' })) rest.push(out.id);
      expect(rest).toEqual(all.slice(i + 1).map((o) => o.id));
    }
    // The same positions, with iteration left open: a new output after the end comes next.
    const it = system.outputs({ from: all[all.length - 1]!.position })[Symbol.asyncIterator]();
    await system.send('account', 'many', { type: 'withdraw', amount: 999 });
    const next = await it.next();
    await it.return?.();
    expect(next.value?.event).toEqual(expect.objectContaining({ amount: 999 }));
    expect(() => system.outputs({ from: inside[0]!.position.replace(/\/\d+/, '/0') })).toThrow(InvalidOptionError);
  });

  it('delivers actor-to-actor mail exactly once, after the sender committed', async () => {
    const system = await sys.create([account]);
    await system.send('account', 'payer', { type: 'deposit', amount: 100 });
    for (let i = 0; i < 10; i++) await system.send('account', 'payer', { type: 'transfer', to: 'payee', amount: 7 });
    await system.drain();
    expect((await system.get('account', 'payer'))?.context.balance).toBe(30);
    const payee = await system.get('account', 'payee');
    expect(payee?.context.balance).toBe(70);
    expect(payee?.seq).toBe(10);
    expect(new Set((await system.journal('account', 'payee')).map((e) => e.id)).size).toBe(10);
  });

  it('accepts any key, encoded so that it cannot break out of its place', async () => {
    const system = await sys.create([account]);
    const nasty = ['a:b', '{x}', '}{', '*', 'line\nbreak', '%41', 'A', '\u0000', 'ü', 'x'.repeat(10_000), '{ns}:j:account:A'];
    for (const key of nasty) await system.send('account', key, { type: 'deposit', amount: key.length });
    await system.drain();
    for (const key of nasty) {
      const s = await system.get('account', key);
      expect(s?.key).toBe(key);
      expect(s?.context.balance).toBe(key.length);
      expect(s?.seq).toBe(1);
    }
    const ns = system.namespace;
    for (const k of await keysOf(ns)) {
      // Every key of the namespace has the partition hash tag first; no user text holds a brace.
      expect(k).toMatch(new RegExp(`^\\{${ns}(:\\d+)?\\}`));
      expect(k.slice(k.indexOf('}') + 1)).not.toMatch(/[{}\n*]/);
    }
  });

  it('rejects bad input with a typed error before writing anything', async () => {
    const ns = uniqueNamespace();
    const system = await sys.create([account], { namespace: ns, worker: false });
    const before = await keysOf(ns);
    const bad: [() => Promise<unknown>, new (...a: never[]) => Error][] = [
      [() => system.send('nope', 'k', { type: 'deposit' }), UnknownActorTypeError],
      [() => system.send('account', '', { type: 'deposit' }), InvalidKeyError],
      [() => system.send('account', 42 as unknown as string, { type: 'deposit' }), InvalidKeyError],
      [() => system.send('account', 'x'.repeat(20_000), { type: 'deposit' }), InvalidKeyError],
      [() => system.send('account', 'k', 'deposit'), InvalidEventError],
      [() => system.send('account', 'k', null), InvalidEventError],
      [() => system.send('account', 'k', [1, 2]), InvalidEventError],
      [() => system.send('account', 'k', { amount: 1 }), InvalidEventError],
      [() => system.send('account', 'k', { type: 7 }), InvalidEventError],
      [() => system.send('account', 'k', { type: 'xstate.init' }), InvalidEventError],
      [() => system.send('account', 'k', { type: 'deposit', big: 'x'.repeat(70_000) }), EventTooLargeError],
      [() => system.send('account', 'k', { type: 'deposit', n: 1n } as unknown as object), InvalidEventError],
      [() => system.send('account', 'k', { type: 'deposit' }, { id: '' }), InvalidEventError],
      [() => system.send('account', 'k', { type: 'deposit' }, { ts: Number.NaN }), InvalidEventError],
      [() => system.send('account', 'k', { type: 'deposit' }, { delayMs: -1 }), InvalidOptionError],
      // sendMany validates every item before writing any.
      [() => system.sendMany([{ type: 'account', key: 'ok', event: { type: 'deposit', amount: 1 } }, { type: 'account', key: 'k', event: {} }]), InvalidEventError],
    ];
    for (const [call, cls] of bad) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(cls);
      expect((err as Error).message.length).toBeGreaterThan(20);
    }
    expect(await keysOf(ns)).toEqual(before);
  });

  it('refuses a namespace reopened with another partition count', async () => {
    const ns = uniqueNamespace();
    await sys.create([account], { namespace: ns, partitions: 4, worker: false });
    await expect(sys.create([account], { namespace: ns, partitions: 8, worker: false })).rejects.toBeInstanceOf(NamespaceMismatchError);
  });

  it('restarts a failing actor, then dead-letters the event; the key goes on, nothing of the failed step is committed', async () => {
    const system: ActorSystem = await sys.create([log]);
    const restarted: string[] = [];
    system.events.on('restarted', (e) => restarted.push(e.eventId));
    await system.send('log', 'p', { type: 'add', n: 1 });
    const { id: poison } = await system.send('log', 'p', { type: 'boom' });
    const { id: fatal } = await system.send('log', 'p', { type: 'fatal' });
    await system.send('log', 'p', { type: 'add', n: 2 });
    await system.drain();
    const state = await system.get('log', 'p');
    expect((state?.context as { log: number[] }).log).toEqual([1, 2]);
    expect(state?.seq).toBe(2);
    expect(restarted.filter((id) => id === poison)).toHaveLength(2); // maxRestarts: 2
    expect(restarted.filter((id) => id === fatal)).toHaveLength(0); // terminal: no restart
    const dead = await system.deadLetters().list();
    expect(dead.map((d) => [d.id, d.attempts])).toEqual(
      expect.arrayContaining([
        [poison, 3],
        [fatal, 1],
      ]),
    );
    expect(dead.find((d) => d.id === poison)?.error.message).toBe('boom');
    const outputs = await collectOutputs(system, 3, 1_500);
    expect(outputs.map((o) => o.event.n)).toEqual([1, 2]);
    // Discard one, retry the other (it fails again: dead-lettered again under its retry id).
    await system.deadLetters().discard(fatal);
    await system.deadLetters().retry(poison);
    await system.drain();
    const after = await system.deadLetters().list();
    expect(after.map((d) => d.id)).toEqual([expect.stringMatching(new RegExp(`^${poison}~retry~`))]);
    await expect(system.deadLetters().discard(fatal)).rejects.toThrow(/no dead letter/);
  });

  it("emits 'committed' for every applied event once, in seq order per key, and not for dead-lettered ones; a throwing listener changes nothing", async () => {
    const system: ActorSystem = await sys.create([log]);
    const committed: { key: string; id: string; seq: number; n: unknown }[] = [];
    const errors: Error[] = [];
    system.events.on('error', (err) => errors.push(err));
    const sizes: number[] = [];
    const seenByListener: unknown[] = [];
    system.events.on('committed', ({ events }) => {
      sizes.push(events.length);
      for (const e of events) seenByListener.push({ ...e.event });
      for (const e of events) committed.push({ key: e.key, id: e.id, seq: e.seq, n: e.event.n });
    });
    // A second listener that throws: reported as an error, the commit stands.
    system.events.on('committed', () => {
      throw new Error('listener bug');
    });
    const sent: string[] = [];
    for (let n = 1; n <= 3; n++) for (const key of ['a', 'b']) sent.push((await system.send('log', key, { type: 'add', n })).id);
    const { id: fatal } = await system.send('log', 'a', { type: 'fatal' });
    await system.drain();
    expect(committed.map((c) => c.id).sort()).toEqual([...sent].sort());
    expect(committed.some((c) => c.id === fatal)).toBe(false);
    for (const key of ['a', 'b']) {
      const mine = committed.filter((c) => c.key === key);
      expect(mine.map((c) => [c.seq, c.n])).toEqual([
        [1, 1],
        [2, 2],
        [3, 3],
      ]);
      expect((await system.get('log', key))?.seq).toBe(3);
    }
    expect(errors.some((e) => e.message === 'listener bug')).toBe(true);
    // The dead letter's commit applied nothing: no empty emit for it.
    expect(sizes.every((n) => n > 0)).toBe(true);
    // Listeners see the event as the machine did (with its id and ts); the journal and the dead
    // letters keep it as sent.
    expect(seenByListener[0]).toEqual({ type: 'add', n: 1, id: committed[0]!.id, ts: expect.any(Number) });
    const journalKey = (await keysOf(system.namespace)).find((k) => k.endsWith(':j:log:a'))!;
    const c = new Redis(redisUrl());
    try {
      const stored = JSON.parse((await c.lrange(journalKey, 0, 0))[0]!) as { e: Record<string, unknown> };
      expect(stored.e).toEqual({ type: 'add', n: 1 });
    } finally {
      c.disconnect();
    }
    const dead = await system.deadLetters().list();
    expect(dead.find((d) => d.id === fatal)?.event).toEqual({ type: 'fatal' });
  });

  it('answers an ask whose event is dead-lettered with a typed error, and asks after close with SystemClosedError', async () => {
    const system = await sys.create([log]);
    await expect(system.ask('log', 'x', { type: 'fatal' })).rejects.toBeInstanceOf(EventDeadLetteredError);
    const pending = system.ask('log', 'x', { type: 'add', n: 1 }, { delayMs: 60_000 }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    await system.close();
    expect(await pending).toBeInstanceOf(SystemClosedError);
    await expect(system.get('log', 'x')).rejects.toBeInstanceOf(SystemClosedError);
    await expect(system.send('log', 'x', { type: 'add', n: 1 })).rejects.toBeInstanceOf(SystemClosedError);
  });
});
