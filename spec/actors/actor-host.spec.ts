import { Redis } from 'ioredis';
import { ActorHost } from '../../actors/actor-host';
import { MachineRunner } from '../../actors/machine-runner';
import { JournalStore, PartitionKeys } from '../../persistence';
import { account } from '../../apps/bank/account-machine';
import { redisUrl, uniqueNamespace } from '../helpers/redis';

describe('actor host', () => {
  let client: Redis;
  beforeEach(() => {
    client = new Redis(redisUrl());
  });
  afterEach(() => client.disconnect());

  it('keeps an actor used often while cold ones pass through a small cache, and evicts the least recently used', async () => {
    const keys = new PartitionKeys(uniqueNamespace('host'), 0);
    const host = new ActorHost(new JournalStore(client), new Map([[account.type, new MachineRunner(account)]]), 4);
    const hot = await host.get(keys, account.type, 'hot');
    for (let i = 0; i < 40; i++) {
      await host.get(keys, account.type, `cold-${i}`);
      // Used every other placement (maxLiveActors / 2): the same object, never rebuilt.
      if (i % 2 === 1) expect(await host.get(keys, account.type, 'hot')).toBe(hot);
    }
    expect(host.size).toBe(4);
    // The cold ones go in order: the two newest are live, the older ones were evicted.
    expect(host.peek(hot.ref)).toBe(hot);
    expect(host.peek('account:cold-39')).toBeDefined();
    expect(host.peek('account:cold-38')).toBeDefined();
    expect(host.peek('account:cold-30')).toBeUndefined();
    // Not used for maxLiveActors placements: evicted.
    for (let i = 0; i < 4; i++) await host.get(keys, account.type, `other-${i}`);
    expect(host.peek(hot.ref)).toBeUndefined();
  });
});
