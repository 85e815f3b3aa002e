/**
 * The labelled generator, the evaluator, and the detector on a generated data
 * set: deterministic data with consistent labels; precision and recall
 * computed as documented; on the CI-sized seeded set, the worker's alerts
 * are exactly what the pure rules give, and each rule's precision and recall
 * stay above a floor.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  ACCOUNT_ACTOR_TYPE,
  createScorer,
  evaluateAlerts,
  evaluationRows,
  FRAUD_PATTERNS,
  generate,
  readAlerts,
  readIncidents,
  resolveRules,
  runInput,
  table,
  type FraudAlert,
  type Incident,
  type RulesState,
} from '../../../apps/fraud-detection';
import { detectors, GENERATE, runTs, tempDir } from './kit';

const det = detectors();

/** The CI data set: small enough for seconds, with enough incidents of each kind. */
const CI = { accounts: 300, tx: 15_000, seed: 1, fraudRate: 0.15 };

/** Floors, a little under what this seed measures (see docs/fraud-detection.md). */
const FLOORS: Record<string, { precision: number; recall: number }> = {
  velocity: { precision: 0.8, recall: 0.75 },
  'amount-spike': { precision: 0.8, recall: 0.9 },
  'impossible-travel': { precision: 0.7, recall: 0.8 },
  'card-testing': { precision: 0.9, recall: 0.75 },
  overall: { precision: 0.8, recall: 0.85 },
};

describe('fraud-detection data set', () => {
  const tmp = tempDir('fraud-data-');

  it('generates the same data for the same seed, with labels that match the transactions', () => {
    const a = generate({ accounts: 80, tx: 3_000, seed: 5, fraudRate: 0.2 });
    expect(generate({ accounts: 80, tx: 3_000, seed: 5, fraudRate: 0.2 })).toEqual(a);
    expect(generate({ accounts: 80, tx: 3_000, seed: 6, fraudRate: 0.2 }).transactions).not.toEqual(a.transactions);

    expect(a.transactions).toHaveLength(3_000);
    const byId = new Map(a.transactions.map((t) => [t.id, t]));
    expect(byId.size).toBe(3_000);
    expect(a.incidents).toHaveLength(16);
    expect(new Set(a.incidents.map((i) => i.accountId)).size).toBe(16);
    for (const p of FRAUD_PATTERNS) expect(a.incidents.filter((i) => i.pattern === p)).toHaveLength(4);
    for (const inc of a.incidents) {
      for (const id of inc.txIds) expect(byId.get(id)?.accountId).toBe(inc.accountId);
      expect(inc.start).toBe(Math.min(...inc.txIds.map((id) => byId.get(id)!.ts)));
    }
    // Input order is arrival order: event time, except the transactions delivered late.
    const late = new Set(a.late);
    const onTime = a.transactions.filter((t) => !late.has(t.id)).map((t) => t.ts);
    expect(onTime).toEqual([...onTime].sort((x, y) => x - y));
    expect(a.late.length).toBeGreaterThan(0);
  });

  it('the generator command writes the same files as the function', async () => {
    const out = path.join(tmp(), 'g-tx.ndjson');
    const labels = path.join(tmp(), 'g-labels.ndjson');
    const run = runTs(GENERATE, ['--accounts', '40', '--tx', '1000', '--seed', '3', '--out', out, '--labels', labels]);
    expect(await run.exit).toBe(0);
    expect(run.out.join('')).toMatch(/all transactions\s+1000/);
    const data = generate({ accounts: 40, tx: 1_000, seed: 3 });
    expect(await fs.readFile(out, 'utf8')).toBe(data.transactions.map((t) => JSON.stringify(t) + '\n').join(''));
    expect(await readIncidents(labels)).toEqual(data.incidents);
  }, 30_000);

  it('scores precision and recall as documented', () => {
    const incidents: Incident[] = [
      { incident: 'i1', pattern: 'velocity', accountId: 'a', txIds: ['a1', 'a2', 'a3'], start: 0, end: 0 },
      { incident: 'i2', pattern: 'card-testing', accountId: 'b', txIds: ['b1', 'b2'], start: 0, end: 0 },
      { incident: 'i3', pattern: 'velocity', accountId: 'c', txIds: ['c1'], start: 0, end: 0 },
    ];
    const alert = (rule: FraudAlert['rule'], txIds: string[]): FraudAlert => ({ type: 'fraud.alert', accountId: 'x', rule, txIds, ts: 0, score: 1, detail: {} });
    const e = evaluateAlerts(
      [
        alert('velocity', ['z0', 'a3']), // velocity incident found
        alert('velocity', ['b1', 'b2']), // right to alert (card testing), no velocity incident found
        alert('velocity', ['n1']), // false positive
        alert('amount-spike', ['b2']), // right to alert, but not its kind
      ],
      incidents,
    );
    expect(e.rows.find((r) => r.rule === 'velocity')).toEqual({ rule: 'velocity', alerts: 3, truePositives: 2, precision: 2 / 3, incidents: 2, detected: 1, recall: 0.5 });
    expect(e.rows.find((r) => r.rule === 'card-testing')).toEqual({ rule: 'card-testing', alerts: 0, truePositives: 0, precision: null, incidents: 1, detected: 0, recall: 0 });
    expect(e.rows.find((r) => r.rule === 'amount-spike')).toMatchObject({ precision: 1, incidents: 0, recall: null });
    expect(e.overall).toEqual({ rule: 'overall', alerts: 4, truePositives: 3, precision: 0.75, incidents: 3, detected: 2, recall: 2 / 3 });
  });

  it('on the seeded CI data set: the same alerts as the pure rules, and precision and recall above their floors', async () => {
    const data = generate(CI);
    const detector = await det.create();
    const output = path.join(tmp(), 'ci-alerts.ndjson');
    const summary = await runInput({ detector, input: Readable.from(data.transactions.map((t) => JSON.stringify(t) + '\n')), source: 'ci', output, quiet: true });
    expect(summary).toMatchObject({ transactions: CI.tx, bad: 0, accounts: CI.accounts });
    const alerts = await readAlerts(output);

    // The actors' alerts = the rules applied to each account's transactions in input order.
    const scorer = createScorer(resolveRules());
    const states = new Map<string, RulesState>();
    const expected: FraudAlert[] = [];
    let late = 0;
    for (const { accountId, ...fields } of data.transactions) {
      const r = scorer.score(states.get(accountId) ?? scorer.init(), accountId, fields);
      states.set(accountId, r.state);
      expected.push(...r.alerts);
      if (r.late) late++;
    }
    const key = (a: FraudAlert) => JSON.stringify([a.ts, a.accountId, a.rule, a.txIds]);
    expect(alerts.map(key).sort()).toEqual(expected.map(key).sort());
    expect(summary.counts.late).toBe(late);
    expect(late).toBeGreaterThan(0);

    // The machine is deterministic: each account's stored snapshot equals the replay of its journal.
    const report = await detector.system.verify(ACCOUNT_ACTOR_TYPE);
    expect(report.totals).toEqual({ mismatched: 0, errors: 0, skipped: 0 });
    expect(report.checked).toBe(CI.accounts);
    expect(report.compared).toBeGreaterThan(CI.accounts / 4);

    const evaluation = evaluateAlerts(alerts, data.incidents);
    process.stdout.write(`fraud-detection CI data set (${JSON.stringify(CI)}):\n${table(evaluationRows(evaluation)).join('\n')}\n`);
    for (const row of [...evaluation.rows, evaluation.overall]) {
      const floor = FLOORS[row.rule]!;
      expect({ rule: row.rule, precisionOk: row.precision! >= floor.precision, recallOk: row.recall! >= floor.recall }).toEqual({ rule: row.rule, precisionOk: true, recallOk: true });
    }
  }, 60_000);
});
