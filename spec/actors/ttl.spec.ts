import { defineActor } from '../../index';
import { accountMachine } from '../../apps/bank/account-machine';
import { systems } from '../helpers/system';

const sys = systems();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('state TTL', () => {
  it("removes a key's state after ttlMs of inactivity; a new event starts it fresh, also for an actor still in memory", async () => {
    const shortLived = defineActor({ type: 'account', machine: accountMachine, ttlMs: 600, snapshotEvery: 1 });
    const system = await sys.create([shortLived]);
    await system.send('account', 'a', { type: 'deposit', amount: 5 });
    expect((await system.ask('account', 'a', { type: 'deposit', amount: 5 })).context.balance).toBe(10);
    // Activity renews the TTL.
    await sleep(400);
    expect((await system.ask('account', 'a', { type: 'deposit', amount: 1 })).seq).toBe(3);
    await sleep(400);
    expect((await system.get('account', 'a'))?.seq).toBe(3);
    // Inactivity removes journal and snapshot.
    await sleep(900);
    expect(await system.get('account', 'a')).toBeUndefined();
    expect(await system.journal('account', 'a')).toEqual([]);
    // The worker still holds the actor in memory: the commit finds the journal gone and it starts fresh.
    const fresh = await system.ask('account', 'a', { type: 'deposit', amount: 7 });
    expect(fresh.seq).toBe(1);
    expect(fresh.context.balance).toBe(7);
  });
});
