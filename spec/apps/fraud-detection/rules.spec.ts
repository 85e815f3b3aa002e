/**
 * Each rule of the account actor against small hand-made sequences, run
 * through a real actor system: it fires, it does not fire, it fires once per
 * window. Also: late transactions, the account's states, review, and
 * re-submitted transactions.
 */
import { alertsIn, detectors, HOUR, MINUTE, outputsOf, PLACES, tx } from './kit';
import type { FraudAlert, FraudOutput, FraudStatusChange } from '../../../apps/fraud-detection';

const det = detectors();
const byRule = (outputs: FraudOutput[], rule: string) => alertsIn(outputs).filter((a) => a.rule === rule) as FraudAlert[];

describe('fraud-detection rules', () => {
  describe('velocity (sliding window)', () => {
    it('fires when a 10-minute window holds more than 8 transactions, naming them', async () => {
      const d = await det.create();
      const burst = Array.from({ length: 9 }, (_, i) => tx('v1', i * MINUTE));
      await d.submit(burst);
      const alerts = byRule(await outputsOf(d), 'velocity');
      expect(alerts).toHaveLength(1);
      expect(alerts[0]).toMatchObject({ type: 'fraud.alert', accountId: 'v1', rule: 'velocity', ts: burst[8]!.ts, score: 1.125 });
      expect(alerts[0]!.txIds).toEqual(burst.map((t) => t.id));
      expect(alerts[0]!.detail).toMatchObject({ count: 9, maxCount: 8 });
      expect((await d.account('v1'))?.alertCount).toBe(1);
    });

    it('does not fire on 8 transactions in 10 minutes, nor on many spread out', async () => {
      const d = await det.create();
      await d.submit(Array.from({ length: 8 }, (_, i) => tx('v2', i * MINUTE)));
      // 30 transactions, one every 2 minutes: any 10-minute window holds 5.
      await d.submit(Array.from({ length: 30 }, (_, i) => tx('v3', i * 2 * MINUTE)));
      const outputs = await outputsOf(d);
      expect(alertsIn(outputs)).toEqual([]);
      expect((await d.account('v2'))?.txCount).toBe(8);
      expect((await d.account('v3'))?.txCount).toBe(30);
    });

    it('fires once for one burst (its overlapping windows are one incident), again for a later burst', async () => {
      const d = await det.create();
      const first = Array.from({ length: 25 }, (_, i) => tx('v4', i * 10_000));
      const second = Array.from({ length: 10 }, (_, i) => tx('v4', 2 * HOUR + i * 20_000));
      await d.submit([...first, ...second]);
      const alerts = byRule(await outputsOf(d), 'velocity');
      expect(alerts.map((a) => a.ts)).toEqual([first[8]!.ts, second[8]!.ts]);
    });
  });

  describe('amount spike (Welford)', () => {
    const history = (account: string) => Array.from({ length: 20 }, (_, i) => tx(account, i * HOUR, { amount: [15, 20, 25, 30, 18][i % 5]! }));

    it('fires on an amount far above the history, and keeps it out of the history', async () => {
      const d = await det.create();
      const h = history('s1');
      const spike = tx('s1', 21 * HOUR, { amount: 900 });
      const again = tx('s1', 22 * HOUR, { amount: 900 });
      await d.submit([...h, spike, again]);
      const alerts = byRule(await outputsOf(d), 'amount-spike');
      expect(alerts.map((a) => a.txIds)).toEqual([[spike.id], [again.id]]);
      expect(alerts[0]!.detail).toMatchObject({ amount: 900, history: 20, k: 4 });
      expect(alerts[0]!.detail.z as number).toBeGreaterThan(4);
      // The second is judged against the same 20-transaction history: the first spike did not join it.
      expect(alerts[1]!.detail).toMatchObject({ history: 20, z: alerts[0]!.detail.z });
    });

    it('does not fire on an ordinary large purchase, nor before the minimum history', async () => {
      const d = await det.create();
      await d.submit([...history('s2'), tx('s2', 21 * HOUR, { amount: 60 })]);
      await d.submit([...history('s3').slice(0, 10), tx('s3', 11 * HOUR, { amount: 5_000 })]);
      expect(alertsIn(await outputsOf(d))).toEqual([]);
    });
  });

  describe('impossible travel', () => {
    it('fires on Paris then New York an hour later, naming both', async () => {
      const d = await det.create();
      const a = tx('i1', 0);
      const b = tx('i1', HOUR, { ...PLACES.newYork });
      await d.submit([a, b]);
      const alerts = byRule(await outputsOf(d), 'impossible-travel');
      expect(alerts).toHaveLength(1);
      expect(alerts[0]).toMatchObject({ txIds: [a.id, b.id], ts: b.ts });
      expect(alerts[0]!.detail).toMatchObject({ fromCountry: 'FR', toCountry: 'US', maxKmh: 900 });
      expect(alerts[0]!.detail.kmh as number).toBeGreaterThan(5_000);
    });

    it('does not fire on a plausible trip or on nearby terminals; the way back from an odd place is not alerted twice', async () => {
      const d = await det.create();
      await d.submit([tx('i2', 0), tx('i2', 3 * HOUR, { ...PLACES.london }), tx('i2', 4 * HOUR, { ...PLACES.parisSuburb })]);
      // 10 km in one minute: too close to judge (minKm 100).
      await d.submit([tx('i3', 0), tx('i3', MINUTE, { ...PLACES.parisSuburb })]);
      const out = tx('i4', HOUR, { ...PLACES.newYork });
      await d.submit([tx('i4', 0), out, tx('i4', 2 * HOUR)]);
      const alerts = byRule(await outputsOf(d), 'impossible-travel');
      expect(alerts.map((a) => [a.accountId, a.txIds[1]])).toEqual([['i4', out.id]]);
    });
  });

  describe('card testing (session window)', () => {
    const small = (account: string, from: number, n: number) => Array.from({ length: n }, (_, i) => tx(account, from + i * MINUTE, { amount: 1, merchant: 'online-7' }));

    it('fires on small amounts followed by a large one in the same session, once per session', async () => {
      const d = await det.create();
      const smalls = small('c1', 0, 4);
      const large = tx('c1', 5 * MINUTE, { amount: 500, merchant: 'electronics-3' });
      const larger = tx('c1', 7 * MINUTE, { amount: 800, merchant: 'electronics-3' });
      // A new session, an hour later: a new incident.
      const later = [...small('c1', HOUR, 3), tx('c1', HOUR + 4 * MINUTE, { amount: 300 })];
      await d.submit([...smalls, large, larger, ...later]);
      const alerts = byRule(await outputsOf(d), 'card-testing');
      expect(alerts.map((a) => a.txIds)).toEqual([[...smalls.map((t) => t.id), large.id], later.map((t) => t.id)]);
      expect(alerts[0]!.detail).toMatchObject({ smallCount: 4, minSmall: 3, amount: 500 });
    });

    it('does not fire with too few small amounts, or when the large one comes after the session ended', async () => {
      const d = await det.create();
      await d.submit([...small('c2', 0, 2), tx('c2', 3 * MINUTE, { amount: 500 })]);
      await d.submit([...small('c3', 0, 4), tx('c3', 40 * MINUTE, { amount: 500 })]);
      expect(byRule(await outputsOf(d), 'card-testing')).toEqual([]);
    });
  });

  it('counts a transaction beyond the grace period as late: not in the windows, still scored by travel and spike', async () => {
    const d = await det.create({ rules: { velocity: { maxCount: 2, windowMs: 10 * MINUTE } } });
    const onTime = [tx('l1', 0), tx('l1', MINUTE), tx('l1', HOUR)];
    // 58 minutes behind the watermark (grace 5 minutes), and in New York between two Paris purchases.
    const late = tx('l1', 2 * MINUTE, { ...PLACES.newYork });
    await d.submit([...onTime, late]);
    const outputs = await outputsOf(d);
    expect(outputs.filter((o) => o.type === 'fraud.late')).toEqual([{ type: 'fraud.late', accountId: 'l1', txId: late.id, ts: late.ts, watermark: onTime[2]!.ts }]);
    // Counted in the window, it would have made 3 within 10 minutes (> 2).
    expect(byRule(outputs, 'velocity')).toEqual([]);
    expect(byRule(outputs, 'impossible-travel').map((a) => a.txIds)).toEqual([[onTime[1]!.id, late.id]]);
    expect(await d.account('l1')).toMatchObject({ txCount: 4, lateCount: 1 });
  });

  it('moves an account normal → watch → blocked, and a review clears it', async () => {
    const d = await det.create();
    await d.submit([tx('st', 0), tx('st', HOUR, { ...PLACES.newYork })]);
    await d.drain();
    expect((await d.account('st'))?.status).toBe('watch');
    // Back and forth: each trip out is one more alert (the way back is not alerted again).
    await d.submit([tx('st', 1.5 * HOUR), tx('st', 2 * HOUR, { ...PLACES.newYork }), tx('st', 2.5 * HOUR), tx('st', 3 * HOUR, { ...PLACES.newYork })]);
    await d.drain();
    expect((await d.account('st'))?.status).toBe('blocked');
    await d.review('st', 'clear', { reviewer: 'ana', id: 'review-1' });
    await d.review('st', 'clear', { reviewer: 'ana', id: 'review-1' });
    const outputs = await outputsOf(d);
    const changes = outputs.filter((o): o is FraudStatusChange => o.type === 'fraud.status').map((o) => `${o.from}→${o.to}`);
    expect(changes).toEqual(['normal→watch', 'watch→blocked', 'blocked→normal']);
    expect(await d.account('st')).toMatchObject({ status: 'normal', alertCount: 3, txCount: 6, seq: 7 });
    await expect(d.review('st', 'maybe' as 'clear')).rejects.toThrow(/decision: expected 'clear' or 'block'/);
  });

  it('applies a re-submitted transaction once: no second alert', async () => {
    const d = await det.create();
    const pair = [tx('r1', 0), tx('r1', HOUR, { ...PLACES.newYork })];
    await d.submit(pair);
    await d.submit(pair);
    await d.submit([pair[1]!]);
    const outputs = await outputsOf(d);
    expect(alertsIn(outputs)).toHaveLength(1);
    expect(await d.account('r1')).toMatchObject({ txCount: 2, seq: 2 });
  });
});
