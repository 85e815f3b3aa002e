import { assignPartitions } from '../../actors/assignment';
import { account } from '../../apps/bank/account-machine';
import { systems } from '../helpers/system';
import { uniqueNamespace } from '../helpers/redis';

const sys = systems();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('partition assignment', () => {
  it('is balanced and the same whatever order the workers are listed in', () => {
    const owners = assignPartitions(16, ['w-b', 'w-a', 'w-c']);
    expect(assignPartitions(16, ['w-c', 'w-a', 'w-b'])).toEqual(owners);
    const counts = ['w-a', 'w-b', 'w-c'].map((w) => owners.filter((o) => o === w).length);
    expect(Math.max(...counts)).toBeLessThanOrEqual(6);
    expect(counts.reduce((a, b) => a + b)).toBe(16);
  });

  it('moves few partitions when a worker leaves or joins', () => {
    const workers = ['w1', 'w2', 'w3', 'w4'];
    const before = assignPartitions(64, workers);
    const after = assignPartitions(64, ['w1', 'w2', 'w3']);
    const moved = before.filter((o, p) => o !== after[p]).length;
    const ofLeaver = before.filter((o) => o === 'w4').length;
    // The leaver's partitions must move; a few others may move to keep the cap.
    expect(moved).toBeGreaterThanOrEqual(ofLeaver);
    expect(moved).toBeLessThan(ofLeaver * 2);
  });

  it('spreads the partitions of a namespace over live workers, and hands them over when one closes', async () => {
    const namespace = uniqueNamespace('spread');
    const opts = { namespace, partitions: 12, leaseTtlMs: 600 };
    const a = await sys.create([account], opts);
    const b = await sys.create([account], opts);
    const c = await sys.create([account], opts);
    const spread = async (members: typeof a[], timeoutMs: number) => {
      const t0 = Date.now();
      for (;;) {
        const owned = members.map((m) => m.ownedPartitions());
        const all = owned.flat().sort((x, y) => x - y);
        const cap = Math.ceil(12 / members.length);
        if (all.length === 12 && new Set(all).size === 12 && owned.every((o) => o.length <= cap && o.length > 0)) return owned;
        if (Date.now() - t0 > timeoutMs) throw new Error(`not spread after ${timeoutMs} ms: ${JSON.stringify(owned)}`);
        await sleep(50);
      }
    };
    const three = await spread([a, b, c], 10_000);
    expect(three.map((o) => o.length)).toEqual([4, 4, 4]);
    // Events flow while a worker leaves: every one applied once.
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < 600; i++) sends.push(a.send('account', `k${i % 60}`, { type: 'deposit', amount: 1 }, { id: `e${i}` }));
    await Promise.all(sends);
    const closedAt = Date.now();
    await c.close();
    const two = await spread([a, b], 10_000);
    const handoverMs = Date.now() - closedAt;
    expect(two.map((o) => o.length)).toEqual([6, 6]);
    await a.drain();
    for (let k = 0; k < 60; k++) expect((await a.get('account', `k${k}`))?.context.balance).toBe(10);
    process.stdout.write(`assignment: 3 workers x 4 partitions -> one closed -> 2 x 6 in ${handoverMs} ms (graceful hand-over, lease ttl 600 ms)\n`);
  });
});
