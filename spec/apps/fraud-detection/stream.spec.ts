/**
 * The long-lived worker on a Redis stream with a real consumer group: a
 * worker killed with kill -9 and restarted resumes where it stopped (its
 * pending entries first), bad entries are counted and acknowledged, the
 * metrics are served for Prometheus, and the alerts come out the same as
 * from a file run of the same transactions. A consumer claims the entries a
 * dead one left pending.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { generate, runInput, StreamConsumer, type RunSummary, type Transaction } from '../../../apps/fraud-detection';
import { cleanupNamespace, redisUrl, uniqueNamespace } from '../../helpers/redis';
import { CLI, detectors, runTs, tempDir, tx, waitUntil, type Proc } from './kit';

const det = detectors();

describe('fraud-detection stream input (consumer group)', () => {
  let redis: Redis;
  const tmp = tempDir('fraud-stream-');
  const namespaces: string[] = [];
  const streams: string[] = [];

  beforeAll(async () => {
    redis = new Redis(redisUrl());
  });
  afterAll(async () => {
    if (streams.length > 0) await redis.del(...streams);
    redis.disconnect();
    for (const n of namespaces) await cleanupNamespace(redisUrl(), n);
  });

  const add = async (stream: string, entries: string[][]) => {
    const pipe = redis.pipeline();
    for (const fields of entries) pipe.xadd(stream, '*', ...fields);
    await pipe.exec();
  };
  const asEntry = (t: Transaction) => ['tx', JSON.stringify(t)];

  it('resumes after kill -9, counts bad entries, serves metrics, and alerts as a file run does', async () => {
    const transactions = generate({ accounts: 60, tx: 2_400, seed: 11, fraudRate: 0.3 }).transactions;
    // The reference: the same transactions from a file.
    const reference = await det.create();
    const refFile = path.join(tmp(), 'reference.ndjson');
    await runInput({ detector: reference, input: Readable.from(transactions.map((t) => JSON.stringify(t) + '\n')), source: 'reference', output: refFile, quiet: true });

    const stream = `fraud-tx-${uniqueNamespace('s')}`;
    streams.push(stream);
    const namespace = uniqueNamespace('fraud-stream');
    namespaces.push(namespace);
    const output = path.join(tmp(), 'stream-alerts.ndjson');
    const args = ['--stream', stream, '--group', 'g1', '--consumer', 'c1', '--output', output, '--namespace', namespace, '--partitions', '4', '--batch', '50', '--metrics-port', '0', '--quiet', '--json'];
    const half = Math.floor(transactions.length / 2);
    // Two bad entries first (the first worker handles them), then half of the transactions.
    await add(stream, [['tx', '{not json'], ['id', 'flat-1', 'accountId', 'a'], ...transactions.slice(0, half).map(asEntry)]);

    const consumer = new StreamConsumer(redis, { stream, group: 'g1', consumer: 'observer' });
    const backlog = () => consumer.backlog();
    const start = (): Proc => runTs(CLI, args);
    const first = start();
    await waitUntil(async () => (await backlog()).lag! <= half * 0.6, 'a third of the entries read by the first worker', 40_000);
    first.child.kill('SIGKILL');
    expect(await first.exit).toBe(137);
    const atKill = await backlog();
    expect(atKill.lag).toBeGreaterThan(0);

    // More entries come while the worker is down, bad ones among them.
    await add(stream, [...transactions.slice(half).map(asEntry), ['tx', JSON.stringify({ ...transactions[0], amount: 'ten' })]]);
    const second = start();
    await waitUntil(() => /metrics at http:\/\/127\.0\.0\.1:(\d+)\/metrics/.test(second.err.join('')), 'the metrics address', 20_000);
    const port = Number(/metrics at http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(second.err.join(''))![1]);
    await waitUntil(async () => {
      const b = await backlog();
      return b.pending === 0 && b.lag === 0;
    }, 'every entry read and acknowledged', 60_000);
    // The output follower of the second worker has caught up once its file holds the reference's alerts.
    const expected = (await fs.readFile(refFile, 'utf8')).split('\n').filter(Boolean).length;
    await waitUntil(async () => {
      try {
        return (JSON.parse(await fs.readFile(`${output}.checkpoint`, 'utf8')) as { alerts: number }).alerts >= expected;
      } catch {
        return false;
      }
    }, `${expected} alerts in the stream run's file`, 30_000);

    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/^fraud_bad_input_total 1$/m);
    expect(Number(/^fraud_transactions_total (\d+)$/m.exec(metrics)![1])).toBeGreaterThanOrEqual(transactions.length - half);
    expect(metrics).toMatch(/^fraud_alerts_total\{rule="impossible-travel"\} \d+$/m);
    expect(metrics).toMatch(/^fraud_alert_latency_seconds_count \d+$/m);
    expect(metrics).toMatch(/^fraud_process_cpu_seconds_total [\d.]+$/m);

    second.child.kill('SIGTERM');
    expect(await second.exit).toBe(0);
    const summary = JSON.parse(second.out.join('')) as RunSummary;
    expect(summary.bad).toBe(1);
    expect(summary.badSamples[0]!.where).toMatch(/^entry \d+-\d+$/);
    expect(first.err.join('') + second.err.join('')).toMatch(/entry \d+-\d+: field tx is not JSON/);
    expect(await fs.readFile(output, 'utf8')).toBe(await fs.readFile(refFile, 'utf8'));
  }, 150_000);

  it("a consumer claims the entries a dead consumer of the group left pending", async () => {
    const stream = `fraud-tx-${uniqueNamespace('claim')}`;
    streams.push(stream);
    const entries = [tx('k1', 0), tx('k1', 1_000), { bogus: true }];
    await add(stream, entries.map((t) => ['tx', JSON.stringify(t)]));
    const dead = new StreamConsumer(redis, { stream, group: 'g', consumer: 'dead', claimIdleMs: 200 });
    await dead.ensureGroup();
    const taken = await dead.read();
    expect(taken.transactions).toHaveLength(2);
    // 'dead' never acknowledges; another consumer takes its entries over once they are idle long enough.
    const alive = new StreamConsumer(redis, { stream, group: 'g', consumer: 'alive', claimIdleMs: 200, blockMs: 100 });
    expect((await alive.read()).ids).toEqual([]);
    await new Promise((r) => setTimeout(r, 400));
    const claimed = await alive.read();
    expect(claimed.ids).toEqual(taken.ids);
    expect(claimed.transactions.map((t) => t.id)).toEqual(entries.slice(0, 2).map((t) => (t as Transaction).id));
    expect(claimed.bad.map((e) => e.where)).toEqual([`entry ${taken.ids[2]}`]);
    await alive.ack(claimed.ids);
    expect(await alive.backlog()).toEqual({ pending: 0, lag: 0 });
    // Restarted under its name, 'dead' finds nothing pending any more.
    expect((await new StreamConsumer(redis, { stream, group: 'g', consumer: 'dead', blockMs: 100 }).read()).ids).toEqual([]);
  }, 30_000);

  it('read(ack) acknowledges the previous batch along with the next read', async () => {
    const stream = `fraud-tx-${uniqueNamespace('ack')}`;
    streams.push(stream);
    await add(stream, [tx('k2', 0), tx('k2', 1_000)].map((t) => ['tx', JSON.stringify(t)]));
    const consumer = new StreamConsumer(redis, { stream, group: 'g', consumer: 'c', blockMs: 100 });
    await consumer.ensureGroup();
    const first = await consumer.read();
    expect(first.transactions.map((t) => t.accountId)).toEqual(['k2', 'k2']);
    expect(await consumer.backlog()).toEqual({ pending: 2, lag: 0 });
    await add(stream, [['tx', JSON.stringify(tx('k2', 2_000))]]);
    const second = await consumer.read(first.ids);
    expect(second.ids).toHaveLength(1);
    expect(await consumer.backlog()).toEqual({ pending: 1, lag: 0 });
    // Restarted, the consumer re-reads only what it had not acknowledged.
    expect((await new StreamConsumer(redis, { stream, group: 'g', consumer: 'c', blockMs: 100 }).read()).ids).toEqual(second.ids);
  }, 30_000);

  it('read(ack): an acknowledgement Redis refuses rejects the read at once, not after the blocking read (when it would have been an unhandled rejection)', async () => {
    const stream = `fraud-tx-${uniqueNamespace('ackfail')}`;
    streams.push(stream);
    const consumer = new StreamConsumer(redis, { stream, group: 'g', consumer: 'c', blockMs: 4_000, claimIdleMs: 60_000 });
    await consumer.ensureGroup();
    await redis.xadd(stream, '*', 'tx', JSON.stringify(tx('k3', 0)));
    expect((await consumer.read()).ids).toHaveLength(1);
    // XACK fails at once ('not-an-id'); the read of new entries would block for 4 s.
    const t0 = Date.now();
    await expect(consumer.read(['not-an-id'])).rejects.toThrow(/Invalid stream ID/i);
    expect(Date.now() - t0).toBeLessThan(2_000);
  }, 30_000);
});
