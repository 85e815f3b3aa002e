import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { account } from '../../apps/bank/account-machine';
import { decodeJobData, eventCount, EVENT_JSON, MAILBOX_FORMAT } from '../../mailbox';
import { jobData, toWire } from '../../mailbox/envelope';
import { redisUrl } from '../helpers/redis';
import { systems } from '../helpers/system';
import { sleep } from '../helpers/time';

const sys = systems();

describe('mailbox format', () => {
  it('decodes format 1, 2 and 3 jobs, and refuses a job with any entry that is not an envelope, whole', () => {
    const env = { id: 'e1', ts: 5, type: 'account', key: 'a', event: { type: 'deposit', amount: 1 } };
    // Format 3 (written now): tuples with the event as its JSON text, kept as sent.
    const asked = { ...env, id: 'e2', ask: 'r1' };
    const fired = { ...env, id: 'e3', timer: { id: 'd1', token: 4 } };
    const written = jobData([toWire(env), toWire(asked), toWire(fired)]);
    expect(written.v).toBe(MAILBOX_FORMAT);
    expect(eventCount(written)).toBe(3);
    const decoded = decodeJobData(JSON.parse(JSON.stringify(written)));
    // toEqual also compares symbol keys: the decoded envelopes carry their event's text.
    const withText = (e: object) => ({ ...e, [EVENT_JSON]: JSON.stringify(env.event) });
    expect(decoded).toEqual([env, asked, fired].map(withText));
    expect(decoded?.[0]?.[EVENT_JSON]).toBe(JSON.stringify(env.event));
    expect(decodeJobData({ v: 3, events: [toWire(env), [...toWire(env).slice(0, 4), '{"type":']] })).toBeUndefined();
    expect(decodeJobData({ v: 3, events: [[...toWire(env).slice(0, 4), '[1]']] })).toBeUndefined();
    expect(decodeJobData({ v: 3, events: [['e1', '5', 'account', 'a', '{"type":"x"}']] })).toBeUndefined();
    expect(decodeJobData({ v: 3, events: [[...toWire(env), 7]] })).toBeUndefined();
    expect(decodeJobData({ v: 3, events: 'nope' })).toBeUndefined();
    expect(decodeJobData({ v: 1, events: [env] })).toEqual([env]);
    expect(decodeJobData({ v: 2, n: 2, events: JSON.stringify([env, { ...env, id: 'e2' }]) })).toEqual([env, { ...env, id: 'e2' }]);
    expect(decodeJobData({ v: 2, n: 2, events: JSON.stringify([env, { ...env, key: 7 }]) })).toBeUndefined();
    expect(decodeJobData({ v: 2, n: 1, events: '[{"id":' })).toBeUndefined();
    expect(decodeJobData({ v: 1, events: [{ ...env, event: null }] })).toBeUndefined();
    expect(decodeJobData({ hello: 'world' })).toBeUndefined();
  });

  it('a job whose data is not keyflow\'s (an event text that does not parse) is reported and acknowledged without effect; the worker goes on', async () => {
    const system = await sys.create([account], { partitions: 1 });
    const errors: string[] = [];
    system.events.on('error', (err) => errors.push(err.message));
    const conn = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    const queue = new Queue('q', { connection: conn, prefix: `{${system.namespace}:0}` });
    try {
      const bad = await queue.add('events', { v: MAILBOX_FORMAT, events: [['e1', 1, 'account', 'a', '{"type":"deposit","amount":']] } as never);
      await system.send('account', 'a', { type: 'deposit', amount: 5 });
      await system.drain({ timeoutMs: 10_000 });
      expect((await system.get('account', 'a'))?.context.balance).toBe(5);
      expect((await system.get('account', 'a'))?.seq).toBe(1);
      expect(errors.find((m) => m.includes(`job ${bad.id}`))).toContain("is not keyflow's");
      expect(await queue.getJobCounts('active', 'wait')).toEqual({ active: 0, wait: 0 });
    } finally {
      await queue.close();
      conn.disconnect();
    }
  });

  it('a job of a newer format is never dropped: the worker applies what came before, leaves it and what follows in place, and stands down', async () => {
    const system = await sys.create([account], { partitions: 1, leaseTtlMs: 1_000 });
    const errors: string[] = [];
    system.events.on('error', (err) => errors.push(err.message));
    await system.ask('account', 'a', { type: 'deposit', amount: 1 });

    // What a newer keyflow would write, between two sends of this one.
    const conn = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    const queue = new Queue('q', { connection: conn, prefix: `{${system.namespace}:0}` });
    try {
      const future = await queue.add('events', { v: MAILBOX_FORMAT + 1, n: 1, events: 'a format from the future' } as never);
      await system.send('account', 'a', { type: 'deposit', amount: 10 });

      const deadline = Date.now() + 10_000;
      while (!errors.some((m) => m.includes('newer than this worker reads')) && Date.now() < deadline) await sleep(20);
      expect(errors.find((m) => m.includes('newer than this worker reads'))).toContain(`job ${future.id} has mailbox format v${MAILBOX_FORMAT + 1}`);
      await sleep(300);

      // Nothing after the unreadable job was applied, the job is still there, and the partition was given up.
      const state = await system.get('account', 'a');
      expect(state?.seq).toBe(1);
      expect(state?.context.balance).toBe(1);
      expect(await queue.getJobState(future.id!)).toBe('active');
      const counts = await queue.getJobCounts('active', 'wait'); // the later send: taken with it, or still waiting
      expect(counts.active! + counts.wait!).toBe(2);
      expect(system.ownedPartitions()).toEqual([]);
    } finally {
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
      conn.disconnect();
    }
  });
});
