/**
 * Input: bad lines (not JSON, missing fields, wrong types) are counted and
 * reported with their line numbers and never stop the run; bad calls of the
 * programmatic API and bad options get a clear typed error and change
 * nothing; stream entries in both forms.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { deleteNamespace } from '../../../index';
import {
  ACCOUNT_ACTOR_TYPE,
  applySetting,
  createFraudDetector,
  InvalidRulesError,
  InvalidTransactionError,
  parseStreamEntry,
  readAlerts,
  resolveRules,
  RulesMismatchError,
  runInput,
  type RunSummary,
} from '../../../apps/fraud-detection';
import { cleanupNamespace, redisUrl, uniqueNamespace } from '../../helpers/redis';
import { CLI, detectors, HOUR, PLACES, runTs, tempDir, tx } from './kit';

const det = detectors();

describe('fraud-detection input', () => {
  const tmp = tempDir('fraud-input-');

  const good = [tx('b1', 0), tx('b1', HOUR, { ...PLACES.newYork }), tx('b2', 0), tx('b2', 2 * HOUR)];
  const lines = [
    JSON.stringify(good[0]), // 1
    '{"id": "t-x", "accountId": ', // 2: not JSON
    JSON.stringify({ id: 'm1', accountId: 'b3', amount: 5 }), // 3: missing fields
    '', // 4: blank, skipped silently
    JSON.stringify({ ...tx('b3', 0), amount: '12.50' }), // 5: wrong type
    '[1, 2, 3]', // 6: not an object
    JSON.stringify({ ...tx('b3', 0), amount: -5, currency: 'euro' }), // 7: out of range, bad code
    JSON.stringify(good[1]), // 8
    JSON.stringify(good[2]), // 9
    JSON.stringify({ ...tx('b3', 0), lat: 123 }), // 10: latitude out of range
    JSON.stringify(good[3]), // 11
  ];

  it('counts bad lines, reports them with their line numbers, and goes on with the good ones', async () => {
    const d = await det.create();
    const log = new PassThrough();
    const logged: string[] = [];
    log.on('data', (c: Buffer) => logged.push(c.toString()));
    const output = path.join(tmp(), 'alerts.ndjson');
    const errorsFile = path.join(tmp(), 'errors.ndjson');
    const summary: RunSummary = await runInput({ detector: d, input: Readable.from(lines.join('\n') + '\n'), source: 'test', output, errorsFile, log });

    expect(summary).toMatchObject({ read: 10, transactions: 4, bad: 6, accounts: 2, interrupted: false });
    expect(summary.badSamples.map((b) => b.where)).toEqual(['line 2', 'line 3', 'line 5', 'line 6', 'line 7', 'line 10']);
    const reason = Object.fromEntries(summary.badSamples.map((b) => [b.where, b.reason]));
    expect(reason['line 2']).toMatch(/^not JSON/);
    expect(reason['line 3']).toMatch(/currency: missing/);
    expect(reason['line 3']).toMatch(/ts: missing/);
    expect(reason['line 5']).toMatch(/^amount: .*expected number, received string/);
    expect(reason['line 6']).toBe('expected a JSON object, received an array');
    expect(reason['line 7']).toMatch(/amount: .*>0/);
    expect(reason['line 7']).toMatch(/currency: expected a 3-letter upper-case currency code/);
    expect(reason['line 10']).toMatch(/^lat: .*<=90/);
    expect(logged.join('')).toContain('[fraud] bad input, skipped: line 2: not JSON');

    const errors = (await fs.readFile(errorsFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { line: number; error: string; text: string });
    expect(errors.map((e) => e.line)).toEqual([2, 3, 5, 6, 7, 10]);
    expect(errors[0]!.text).toBe(lines[1]);

    // The good lines after the bad ones were scored: b1's trip to New York is in the alerts file.
    const alerts = await readAlerts(output);
    expect(alerts.map((a) => [a.rule, a.txIds])).toEqual([['impossible-travel', [good[0]!.id, good[1]!.id]]]);
    expect(await d.account('b2')).toMatchObject({ txCount: 2, alertCount: 0 });
    expect(await d.account('b3')).toBeUndefined();
  });

  it('the command line reads stdin, reports bad lines with their numbers and exits 0', async () => {
    const ns = `fraud-cli-${process.pid}`;
    const run = runTs(CLI, ['--input', '-', '--namespace', ns, '--json', '--partitions', '4'], { stdin: lines.join('\n') });
    const code = await run.exit;
    const summary = JSON.parse(run.out.join('')) as RunSummary;
    const d = await det.create({ namespace: ns, worker: false });
    expect({ code, stderr: run.err.join('').match(/line \d+/g) }).toEqual({ code: 0, stderr: ['line 2', 'line 3', 'line 5', 'line 6', 'line 7', 'line 10'] });
    expect(summary).toMatchObject({ read: 10, transactions: 4, bad: 6 });
    expect(summary.counts.alerts['impossible-travel']).toBe(1);
    expect(await d.account('b1')).toMatchObject({ txCount: 2, alertCount: 1 });
  }, 30_000);

  it('the command line refuses bad options with exit code 2 and says why', async () => {
    const cases: [string[], RegExp][] = [
      [['--input', 'x.ndjson', '--partitions', 'many'], /--partitions.*expected an integer from 1 to 16384/],
      [['--input', 'x.ndjson', '--bogus'], /unknown option '--bogus'/],
      [['--input', 'x.ndjson', '--namespace', 'Bad NS'], /--namespace.*expected \[a-z\]/],
      [['review', 'acct-1', '--decision', 'maybe'], /--decision.*Allowed choices are clear, block/],
    ];
    for (const [args, message] of cases) {
      const run = runTs(CLI, args);
      expect({ args, code: await run.exit }).toEqual({ args, code: 2 });
      expect(run.err.join('')).toMatch(message);
    }
    const both = runTs(CLI, ['--input', 'x.ndjson', '--stream', 's']);
    expect(await both.exit).toBe(1);
    expect(both.err.join('')).toContain('give --input or --stream, not both');
  }, 60_000);

  it('submit() refuses a batch with an invalid transaction, naming it, and sends none of it', async () => {
    const d = await det.create();
    const bad = { ...tx('p1', HOUR), ts: 'yesterday' };
    await expect(d.submit([tx('p1', 0), bad])).rejects.toThrow(InvalidTransactionError);
    await expect(d.submit([tx('p1', 0), bad])).rejects.toThrow(/^transactions\[1\]: ts: .*expected number, received string/);
    await expect(d.submit('nope' as unknown as unknown[])).rejects.toThrow(/expected an array/);
    await d.drain();
    expect(await d.account('p1')).toBeUndefined();
  });

  it('reads stream entries as one JSON field or as flat fields', () => {
    const t = tx('e1', 0);
    expect(parseStreamEntry('1-0', ['tx', JSON.stringify(t)])).toEqual(t);
    const flat = Object.entries(t).flatMap(([k, v]) => [k, String(v)]);
    expect(parseStreamEntry('1-1', flat)).toEqual(t);
    expect(() => parseStreamEntry('1-2', ['tx', '{oops'])).toThrow(/^entry 1-2: field tx is not JSON/);
    expect(() => parseStreamEntry('1-3', ['id', 'x', 'amount', 'lots'])).toThrow(/^entry 1-3: accountId: missing; amount: .*expected number/);
  });

  it('thresholds: a wrong one names the setting; a namespace keeps the rules it was created with', async () => {
    expect(() => resolveRules({ velocity: { maxCount: 0 } })).toThrow(/^rules\.velocity\.maxCount: /);
    expect(() => resolveRules({ velocty: {} } as never)).toThrow(InvalidRulesError);
    expect(() => resolveRules({ cardTesting: { largeMin: 1 } })).toThrow(/cardTesting\.largeMin must be above cardTesting\.smallMax/);
    expect(() => applySetting({}, 'velocity.maxCount')).toThrow(/expected path=value/);
    expect(resolveRules(applySetting(applySetting({}, 'velocity.maxCount=12'), 'amountSpike.logScale=false'))).toMatchObject({
      velocity: { maxCount: 12, windowMs: 600_000 },
      amountSpike: { logScale: false, k: 4 },
    });

    const d = await det.create({ rules: { velocity: { maxCount: 5 } } });
    await expect(createFraudDetector({ redis: redisUrl(), namespace: d.namespace, partitions: 4, worker: false })).rejects.toThrow(RulesMismatchError);
    const same = await createFraudDetector({ redis: redisUrl(), namespace: d.namespace, partitions: 4, worker: false, rules: { velocity: { maxCount: 5 } } });
    expect(same.instance).toBe(d.instance);
    await same.close();
  });

  it('a deleted namespace forgets its rules and instance: created again with other rules, it gets a new instance id', async () => {
    const ns = uniqueNamespace('fraud');
    const opts = { redis: redisUrl(), namespace: ns, partitions: 4, worker: false };
    try {
      const first = await createFraudDetector({ ...opts, rules: { velocity: { maxCount: 5 } } });
      await first.close();
      expect(await deleteNamespace(redisUrl(), ns)).toBeGreaterThan(0);
      const again = await createFraudDetector({ ...opts, rules: { velocity: { maxCount: 9 } } });
      expect(again.instance).not.toBe(first.instance);
      expect(again.rules.velocity.maxCount).toBe(9);
      await again.close();
      // And nothing of the app is left behind by a delete.
      await deleteNamespace(redisUrl(), ns);
      const back = await createFraudDetector(opts);
      expect(back.instance).not.toBe(again.instance);
      await back.close();
    } finally {
      await cleanupNamespace(redisUrl(), ns);
    }
  });

  it('a tx sent straight to the account actor without a valid amount or position is dead-lettered at once and changes nothing', async () => {
    const d = await det.create();
    const restarted: string[] = [];
    d.system.events.on('restarted', (e) => restarted.push(e.eventId));
    await d.submit([tx('v1', 0)]);
    await d.drain();
    const before = await d.system.get(ACCOUNT_ACTOR_TYPE, 'v1');
    expect(before?.seq).toBe(1);

    const { accountId: _account, id: _id, ts, ...fields } = tx('v1', HOUR);
    const bad = [
      { ...fields, amount: Number.NaN }, // stored as null
      { ...fields, amount: -5 },
      { ...fields, lat: undefined }, // vanishes from the JSON
      { ...fields, lng: 200 },
      { ...fields, lat: '48.85' },
    ];
    const ids: string[] = [];
    for (const [i, fieldsOfBad] of bad.entries()) {
      ids.push((await d.system.send(ACCOUNT_ACTOR_TYPE, 'v1', { type: 'tx', ...fieldsOfBad }, { id: `bad-${i}`, ts: ts + i })).id);
    }
    const noId = await d.system.send(ACCOUNT_ACTOR_TYPE, 'v1', { type: 'tx', ...fields, id: 42 }, { ts });
    ids.push(noId.id);
    await d.drain();

    const dead = await d.system.deadLetters().list();
    expect(dead.map((l) => l.id).sort()).toEqual([...ids].sort());
    for (const l of dead) {
      expect(l.attempts).toBe(1);
      expect(l.error.name).toBe('TerminalActorError');
    }
    const message = (id: string) => dead.find((l) => l.id === id)!.error.message;
    expect(message('bad-0')).toMatch(/^account v1: tx bad-0: amount: /);
    expect(message('bad-1')).toMatch(/amount: /);
    expect(message('bad-2')).toMatch(/lat: missing/);
    expect(message('bad-3')).toMatch(/lng: /);
    expect(message('bad-4')).toMatch(/lat: .*expected number/);
    expect(message(noId.id)).toMatch(/tx \(no id\): id: /);
    expect(restarted).toEqual([]);
    expect(await d.system.get(ACCOUNT_ACTOR_TYPE, 'v1')).toEqual(before);

    // The key goes on, and its snapshot still equals the replay of its journal.
    await d.submit([tx('v1', 2 * HOUR)]);
    await d.drain();
    expect(await d.account('v1')).toMatchObject({ txCount: 2, seq: 2, alertCount: 0 });
    const report = await d.system.verify(ACCOUNT_ACTOR_TYPE);
    expect(report.totals).toEqual({ mismatched: 0, errors: 0, skipped: 0 });
  });
});
