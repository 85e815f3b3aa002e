/**
 * Redis Cluster: a private 3-master cluster on loopback ports
 * (spec/helpers/cluster.ts startPrivateCluster). Every key of a
 * partition, BullMQ's included, shares one hash tag, so each script touches
 * one slot; the core invariants must hold across the cluster.
 */
import { execFileSync } from 'node:child_process';
import { createActorSystem, type ActorSystem } from '../../index';
import { account } from '../../apps/bank/account-machine';
import { startPrivateCluster, type PrivateCluster } from '../helpers/cluster';
import { collectOutputs } from '../helpers/system';

describe('Redis Cluster', () => {
  let cluster: PrivateCluster | undefined;
  const open: ActorSystem[] = [];

  afterAll(async () => {
    await Promise.all(open.map((s) => s.close()));
    await cluster?.stop();
  });

  it('keeps order, exactly-once, outputs and mail across a 3-master cluster', async () => {
    cluster = await startPrivateCluster(3);
    const { nodes, startup } = cluster;
    const redis = { cluster: startup };
    const worker = await createActorSystem({ redis, namespace: 'cl', partitions: 8, actors: [account], leaseTtlMs: 1_000 });
    open.push(worker);
    const producer = await createActorSystem({ redis, namespace: 'cl', partitions: 8, actors: [account], worker: false });
    open.push(producer);

    const keys = Array.from({ length: 40 }, (_, i) => `acct-${i}`);
    const model = new Map<string, { balance: number; rejected: number; ids: string[] }>(keys.map((k) => [k, { balance: 0, rejected: 0, ids: [] }]));
    const sends: Promise<unknown>[] = [];
    for (let n = 0; n < 25; n++) {
      for (const key of keys) {
        const id = `${key}-${n}`;
        const amount = (n * 7 + key.length) % 13;
        const type = n % 3 === 2 ? 'withdraw' : 'deposit';
        const m = model.get(key)!;
        if (type === 'deposit') m.balance += amount;
        else if (amount <= m.balance) m.balance -= amount;
        else m.rejected++;
        m.ids.push(id);
        sends.push(producer.send('account', key, { type, amount }, { id }));
        if (n % 5 === 0) sends.push(producer.send('account', key, { type, amount }, { id })); // duplicate: applied once
      }
    }
    await Promise.all(sends);
    // Mail across partitions (and so across nodes): 10 transfers into one account.
    await producer.send('account', 'payer', { type: 'deposit', amount: 100 });
    for (let i = 0; i < 10; i++) await producer.send('account', 'payer', { type: 'transfer', to: 'payee', amount: 3 });
    await producer.drain({ timeoutMs: 60_000 });

    for (const [key, m] of model) {
      const state = await producer.get('account', key);
      expect(state?.context).toMatchObject({ balance: m.balance, rejected: m.rejected });
      expect((await producer.journal('account', key)).map((e) => e.id)).toEqual(m.ids);
      expect(await producer.replay('account', key, { toSeq: m.ids.length })).toEqual(state);
    }
    expect((await producer.get('account', 'payee'))?.context.balance).toBe(30);
    const rejected = [...model.values()].reduce((a, m) => a + m.rejected, 0);
    const outputs = await collectOutputs(producer, rejected + 1, 3_000);
    expect(outputs).toHaveLength(rejected);
    expect(new Set(outputs.map((o) => o.id)).size).toBe(rejected);
    // The partitions' keys really are spread over the three masters.
    const spread = await Promise.all(
      nodes.map(async (n) => {
        const out = execFileSync('redis-cli', ['-p', String(n.port), '--scan', '--pattern', '{cl:*'], { encoding: 'utf8' });
        return out.split('\n').filter(Boolean).length;
      }),
    );
    expect(spread.filter((c) => c > 0).length).toBe(3);
    process.stdout.write(`cluster: 3 masters, 8 partitions, ${model.size} keys, events=${1000 + 11} outputs=${outputs.length} keys-per-node=${spread.join('/')}\n`);
  }, 120_000);
});
