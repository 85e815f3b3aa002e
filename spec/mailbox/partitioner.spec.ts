import { partitionOf } from '../../mailbox';

describe('mailbox: partitioner', () => {
  it('is FNV-1a over "type NUL key" mod partitions: stable across processes and versions', () => {
    // Golden values, computed independently: a change of the hash would move every existing key.
    expect(partitionOf('account', 'alice', 16)).toBe(4);
    expect(partitionOf('account', 'bob', 16)).toBe(15);
    expect(partitionOf('driver', 'alice', 16)).toBe(15);
    expect(partitionOf('account', 'ü:{x}', 1024)).toBe(247);
  });

  it('spreads keys evenly over partitions', () => {
    const counts = new Array(16).fill(0);
    for (let i = 0; i < 16_000; i++) counts[partitionOf('account', `user-${i}`, 16)]++;
    for (const c of counts) {
      expect(c).toBeGreaterThan(800);
      expect(c).toBeLessThan(1_200);
    }
  });

  it('separates actor types: the type is part of the hash', () => {
    const differ = Array.from({ length: 100 }, (_, i) => partitionOf('a', `k${i}`, 64) !== partitionOf('b', `k${i}`, 64)).filter(Boolean).length;
    expect(differ).toBeGreaterThan(80);
  });
});
