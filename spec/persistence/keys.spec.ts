import { encodeKey, decodeKey, journalKeys, PartitionKeys, actorRef } from '../../persistence';

describe('persistence: key encoding', () => {
  it('keeps plain keys readable and escapes everything else', () => {
    expect(encodeKey('user-42_a.b@c')).toBe('user-42_a.b@c');
    expect(encodeKey('a:b')).toBe('a%3Ab');
    expect(encodeKey('{x}*\n')).toBe('%7Bx%7D%2A%0A');
    expect(encodeKey('ü')).toBe('%C3%BC');
  });

  it('is injective on tricky keys, and never yields a separator, brace, glob or control character', () => {
    const keys = ['a:b', 'a%3Ab', '%', '%25', '{', '}', '*', '?', '[', ']', ' ', '\n', '\u0000', 'a'.repeat(200), 'a'.repeat(201), 'ü', 'u\u0308', '#abc', 'x'.repeat(10_000), 'x'.repeat(10_001)];
    const encoded = keys.map(encodeKey);
    expect(new Set(encoded).size).toBe(keys.length);
    for (const e of encoded) {
      expect(e).not.toMatch(/[:{}*?[\]\s\u0000-\u001f|]/);
      expect(e.length).toBeLessThanOrEqual(200);
    }
  });

  it('puts every key of a partition under one hash tag, whatever the user key', () => {
    const keys = new PartitionKeys('bank', 7);
    const ref = actorRef('account', '}{evil}:x');
    for (const k of [keys.journal(ref), keys.snapshot(ref), keys.lease, keys.dedup, keys.outbox, keys.reply('r1')]) {
      expect(k.startsWith('{bank:7}:')).toBe(true);
      expect(k.indexOf('}')).toBe('{bank:7'.length);
    }
  });

  it('decodes what encodeKey made (a digest cannot be), and names the journal keys of a type', () => {
    for (const key of ['plain', 'a:b', '%25', '{x}*\n', 'ü', 'u\u0308', '#abc', 'a'.repeat(66)]) expect(decodeKey(encodeKey(key))).toBe(key);
    expect(decodeKey(encodeKey('x'.repeat(10_000)))).toBeUndefined();
    expect(decodeKey('a%3ab')).toBeUndefined(); // lower-case escape: not encodeKey's
    const { pattern, parse } = journalKeys('bank', 'account');
    expect(pattern).toBe('{bank:*}:j:account:*');
    const name = new PartitionKeys('bank', 7).journal(actorRef('account', 'a:b'));
    expect(parse(name)).toEqual({ partition: 7, ref: actorRef('account', 'a:b'), encoded: 'a%3Ab' });
    expect(parse(new PartitionKeys('bank', 7).snapshot(actorRef('account', 'a')))).toBeUndefined();
    expect(parse(new PartitionKeys('bank2', 7).journal(actorRef('account', 'a')))).toBeUndefined();
  });
});
