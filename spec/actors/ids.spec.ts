import { v5 as uuidv5, validate, version } from 'uuid';
import { derivedId, eventId, KEYFLOW_UUID_NS } from '../../actors/ids';

describe('engine ids', () => {
  it('derivedId is the uuid v5 of the name in keyflow namespace, byte for byte', () => {
    // Short and long names (past the in-place buffer, 6 000 × 3 bytes), non-ASCII, and enough names for every variant nibble.
    const names = ['', 'a', 'bench-counter\u0000k1/17/out/0', 'ключ/1/mail/3', 'x'.repeat(5000), 'y'.repeat(6000), 'ü'.repeat(9000)];
    for (let i = 0; i < 300; i++) names.push(`t:k${i}/${i * 7}/out/${i % 3}`);
    for (const name of names) expect(derivedId(name)).toBe(uuidv5(name, KEYFLOW_UUID_NS));
    // The in-place buffer holds nothing of an earlier name: a long name, then a short one.
    expect(derivedId('z'.repeat(4000))).toBe(uuidv5('z'.repeat(4000), KEYFLOW_UUID_NS));
    expect(derivedId('z')).toBe(uuidv5('z', KEYFLOW_UUID_NS));
  });

  it('eventId makes valid, unique, strictly increasing v7 uuids, also within one millisecond and when the clock goes back', () => {
    const ids: string[] = [];
    for (let i = 0; i < 5000; i++) ids.push(eventId(1_700_000_000_000 + Math.floor(i / 1000)));
    ids.push(eventId(1_600_000_000_000)); // clock went back: still after the others
    for (const id of ids) {
      expect(validate(id)).toBe(true);
      expect(version(id)).toBe(7);
    }
    expect(new Set(ids).size).toBe(ids.length);
    const sorted = [...ids].sort();
    expect(sorted).toEqual(ids);
    expect(ids[0]!.slice(0, 13)).toBe('018bcfe5-6800'); // 1_700_000_000_000 ms = 0x18bcfe56800
  });
});
