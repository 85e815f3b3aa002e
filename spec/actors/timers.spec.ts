/**
 * Durable timers: XState `after` delays become BullMQ delayed jobs committed
 * with the step that armed them; a firing is a journaled event, applied once,
 * and dropped if its state was left meanwhile. The crash case kills the worker
 * process 500 ms after the timer was armed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { setup } from 'xstate';
import { Queue } from 'bullmq';
import { createActorSystem, defineActor } from '../../index';
import { partitionOf } from '../../mailbox';
import { actorRef, PartitionKeys } from '../../persistence';
import { OFFER_MS, offer } from '../faults/fixtures/timer-machine';
import { cleanupNamespace, redisUrl, uniqueNamespace } from '../helpers/redis';
import { collectOutputs, systems } from '../helpers/system';

const sys = systems();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForValue(get: () => Promise<unknown>, value: string, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (((await get()) as { value?: string } | undefined)?.value === value) return Date.now();
    await sleep(20);
  }
  throw new Error(`state did not become ${value} within ${timeoutMs} ms`);
}

describe('durable timers', () => {
  it('fires an `after` transition once, about on time, with its output once; a timer whose state was left never fires', async () => {
    const system = await sys.create([offer], { partitions: 2 });
    const t0 = Date.now();
    await system.send('offer', 'o1', { type: 'start' });
    await system.send('offer', 'o2', { type: 'start' });
    await system.send('offer', 'o2', { type: 'accept' });
    const firedAt = await waitForValue(() => system.get('offer', 'o1'), 'expired', OFFER_MS + 5_000);
    expect(firedAt - t0).toBeGreaterThanOrEqual(OFFER_MS - 50);
    await sleep(500);
    const o1 = await system.get('offer', 'o1');
    expect(o1?.seq).toBe(2);
    expect((await system.journal('offer', 'o1')).map((e) => e.event.type)).toEqual(['start', 'xstate.after.2000.offer.waiting']);
    // Event time of the firing = the arming event's ts + the delay: replay stays exact.
    expect((o1?.context as { expiredTs: number; startedTs: number }).expiredTs - (o1?.context as { startedTs: number }).startedTs).toBe(OFFER_MS);
    expect(await system.replay('offer', 'o1', { toSeq: 2 })).toEqual(o1);
    const o2 = await system.get('offer', 'o2');
    expect(o2?.value).toBe('accepted');
    expect(o2?.seq).toBe(2);
    const outputs = await collectOutputs(system, 2, 1_000);
    expect(outputs.map((o) => [o.key, o.event.type])).toEqual([['o1', 'offer.expired']]);
  });

  it('relays one delayed job for a timer re-armed several times in one batch: the earlier armings are stale', async () => {
    const rearm = defineActor({
      type: 'rearm',
      machine: setup({}).createMachine({
        initial: 'open',
        states: { open: { on: { tick: { target: 'open', reenter: true } }, after: { 60_000: 'idle' } }, idle: {} },
      }),
    });
    const system = await sys.create([rearm], { partitions: 1 });
    await system.sendMany(Array.from({ length: 5 }, (_, i) => ({ type: 'rearm', key: 'k', event: { type: 'tick' }, id: `tick-${i}` })));
    await system.drain();
    expect((await system.get('rearm', 'k'))?.seq).toBe(5);
    const conn = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    const queue = new Queue('q', { connection: conn, prefix: `{${system.namespace}:0}` });
    try {
      expect(await queue.getDelayedCount()).toBe(1);
    } finally {
      await queue.close();
      conn.disconnect();
    }
  });

  it('keeps a pending timer across passivation: rebuilt from the journal, or read from a snapshot', async () => {
    // maxLiveActors: 1 -> touching another key passivates the first; it is rehydrated for the firing.
    const system = await sys.create([offer], { partitions: 2, maxLiveActors: 1 });
    // From the journal: start (seq 1) arms the timer; no snapshot yet (snapshotEvery: 2).
    expect((await system.ask('offer', 'j', { type: 'start' })).value).toBe('waiting');
    await system.ask('offer', 'evict-1', { type: 'accept' });
    // From a snapshot: start (1) and an unhandled event (2) -> the snapshot at seq 2 holds the pending timer.
    expect((await system.ask('offer', 's', { type: 'start' })).value).toBe('waiting');
    expect((await system.ask('offer', 's', { type: 'ping' } as never)).seq).toBe(2);
    const keys = new PartitionKeys(system.namespace, partitionOf('offer', 's', 2));
    const redis = new Redis(redisUrl());
    const stored = await redis.hmget(keys.snapshot(actorRef('offer', 's')), 'seq', 'timers');
    redis.disconnect();
    expect(stored[0]).toBe('2');
    expect(JSON.parse(stored[1]!)).toEqual({ 'xstate.after.2000.offer.waiting': expect.objectContaining({ token: 1 }) });
    await system.ask('offer', 'evict-2', { type: 'accept' });
    await waitForValue(() => system.get('offer', 'j'), 'expired', OFFER_MS + 5_000);
    await waitForValue(() => system.get('offer', 's'), 'expired', OFFER_MS + 5_000);
    expect((await system.get('offer', 'j'))?.seq).toBe(2);
    expect((await system.get('offer', 's'))?.seq).toBe(3);
  });

  it('fires once after the worker process is killed 500 ms after the timer was armed', async () => {
    const ns = uniqueNamespace('timer');
    const producer = await createActorSystem({ redis: redisUrl(), namespace: ns, partitions: 2, actors: [offer], worker: false });
    const logs: string[] = [];
    const start = () => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, '..', 'faults', 'fixtures', 'timer-worker.ts')], {
        env: { ...process.env, KEYFLOW_NS: ns, KEYFLOW_LEASE_TTL_MS: '1000' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.on('data', (d: Buffer) => logs.push(d.toString()));
      child.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
      return child;
    };
    const ready = async (from: number) => {
      const t0 = Date.now();
      while (!logs.slice(from).join('').includes('ready')) {
        if (Date.now() - t0 > 20_000) throw new Error(`worker not ready: ${logs.join('')}`);
        await sleep(20);
      }
    };
    let worker: ChildProcess = start();
    try {
      await ready(0);
      const state = await producer.ask('offer', 'k', { type: 'start' });
      expect(state.value).toBe('waiting');
      const armedAt = Date.now();
      await sleep(500);
      worker.kill('SIGKILL');
      const from = logs.length;
      worker = start();
      await ready(from);
      const firedAt = await waitForValue(() => producer.get('offer', 'k'), 'expired', OFFER_MS + 10_000);
      await sleep(1_000);
      const final = await producer.get('offer', 'k');
      expect(final?.seq).toBe(2);
      const outputs = await collectOutputs(producer, 2, 1_000);
      expect(outputs.map((o) => o.event.type)).toEqual(['offer.expired']);
      process.stdout.write(`timers/crash: armed-to-fired=${firedAt - armedAt}ms (timer ${OFFER_MS} ms, worker killed at 500 ms, lease 1000 ms) fired=1 outputs=${outputs.length}\n`);
    } finally {
      worker.kill('SIGKILL');
      await producer.close();
      await cleanupNamespace(redisUrl(), ns);
    }
  }, 60_000);
});
