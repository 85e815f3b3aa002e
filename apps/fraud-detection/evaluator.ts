/**
 * Precision and recall of the alerts against the generator's labels.
 *
 *   precision of a rule = its alerts that name at least one fraudulent
 *                         transaction (of any incident) / its alerts
 *   recall of a rule    = incidents of its own kind that one of its alerts
 *                         names / incidents of its kind
 *   overall             = the same over all alerts and all incidents (an
 *                         incident counts as detected by any rule)
 *
 * An alert "names" a transaction when the transaction is in its txIds.
 * Precision counts an alert of one rule on another kind of fraud as right
 * (a card-testing run often trips velocity too: it is fraud all the same);
 * recall credits each rule only with its own kind.
 */
import { promises as fs } from 'node:fs';
import type { Incident } from './generator';
import { RULES, type FraudAlert, type RuleName } from './rules';

export interface EvaluationRow {
  rule: RuleName | 'overall';
  alerts: number;
  /** Alerts naming a fraudulent transaction. */
  truePositives: number;
  precision: number | null;
  incidents: number;
  detected: number;
  recall: number | null;
}

export interface Evaluation {
  rows: EvaluationRow[];
  overall: EvaluationRow;
}

const ratio = (a: number, b: number) => (b === 0 ? null : a / b);

export function evaluateAlerts(alerts: readonly FraudAlert[], incidents: readonly Incident[]): Evaluation {
  const incidentOf = new Map<string, Incident>();
  for (const inc of incidents) for (const id of inc.txIds) incidentOf.set(id, inc);
  const hits = (a: FraudAlert) => a.txIds.map((id) => incidentOf.get(id)).filter((x): x is Incident => x !== undefined);

  const row = (rule: RuleName | 'overall', own: readonly FraudAlert[], kinds: readonly Incident[]): EvaluationRow => {
    const truePositives = own.filter((a) => hits(a).length > 0).length;
    const detectedSet = new Set<string>();
    for (const a of own) for (const inc of hits(a)) if (rule === 'overall' || inc.pattern === rule) detectedSet.add(inc.incident);
    const detected = kinds.filter((k) => detectedSet.has(k.incident)).length;
    return { rule, alerts: own.length, truePositives, precision: ratio(truePositives, own.length), incidents: kinds.length, detected, recall: ratio(detected, kinds.length) };
  };
  return {
    rows: RULES.map((r) =>
      row(
        r,
        alerts.filter((a) => a.rule === r),
        incidents.filter((i) => i.pattern === r),
      ),
    ),
    overall: row('overall', alerts, incidents),
  };
}

/** Read a labels file (NDJSON of incidents, as the generator writes it). */
export async function readIncidents(path: string): Promise<Incident[]> {
  const text = await fs.readFile(path, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => {
      let v: Incident;
      try {
        v = JSON.parse(l) as Incident;
      } catch (err) {
        throw new Error(`${path} line ${i + 1}: not JSON (${(err as Error).message})`);
      }
      if (typeof v.incident !== 'string' || !Array.isArray(v.txIds) || typeof v.pattern !== 'string') {
        throw new Error(`${path} line ${i + 1}: not an incident { incident, pattern, accountId, txIds, start, end }`);
      }
      return v;
    });
}

const pct = (x: number | null) => (x === null ? '—' : `${(x * 100).toFixed(1)}%`);

/** The evaluation as table rows (header first). */
export function evaluationRows(e: Evaluation): string[][] {
  return [
    ['rule', 'alerts', 'true pos.', 'precision', 'incidents', 'detected', 'recall'],
    ...[...e.rows, e.overall].map((r) => [r.rule, String(r.alerts), String(r.truePositives), pct(r.precision), String(r.incidents), String(r.detected), pct(r.recall)]),
  ];
}
