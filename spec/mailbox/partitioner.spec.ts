import { partitionOf } from '../../mailbox';

describe('mailbox: partitioner', () => {
  it('is FNV-1a over "type NUL key" mod partitions: stable across processes and versions', () => {
    // Golden values, computed independently: a change of the hash would move every existing key.
    expect(partitionOf('account', 'alice', 16)).toBe(4);
    expect(partitionOf('account', 'bob', 16)).toBe(15);
    expect(partitionOf('driver', 'alice', 16)).toBe(15);
    expect(partitionOf('account', 'ü:{x}', 1024)).toBe(247);
  });

  it('hashes the UTF-8 bytes of any text, surrogate pairs and lone surrogates included', () => {
    // The definition, byte by byte: what the allocation-free encoder must agree with.
    const byBytes = (type: string, key: string, n: number) => {
      let h = 0x811c9dc5;
      for (const b of Buffer.from(`${type}\u0000${key}`, 'utf8')) h = Math.imul(h ^ b, 0x01000193);
      return (h >>> 0) % n;
    };
    const samples = ['', 'a', 'é', 'ü:{x}', '€', '😀', 'a😀b', '\ud800', 'x\udc00', '\udbff\udfff', '\ud83d', 'ключ', '中文', '\u0000', '\u07ff\u0800\uffff'];
    for (let i = 0; i < 500; i++) samples.push(String.fromCharCode(...Array.from({ length: 1 + (i % 7) }, (_, j) => (i * 7919 + j * 104_729) % 0x10000)));
    for (const key of samples) {
      for (const n of [7, 16, 1024]) expect(partitionOf('t€', key, n)).toBe(byBytes('t€', key, n));
    }
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
