/**
 * Exactly-once, end to end, with the command line as a real process: the same
 * file fed twice (a second run, and one run reading it twice from stdin) and
 * a run killed with kill -9 halfway then restarted give the very same alerts
 * file as a clean run: same alerts, no duplicates, no losses.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createFraudDetector, generate, readAlerts, type RunSummary, type Transaction } from '../../../apps/fraud-detection';
import { cleanupNamespace, redisUrl, uniqueNamespace } from '../../helpers/redis';
import { CLI, runTs, sleep, tempDir, waitUntil } from './kit';

describe('fraud-detection exactly-once (real processes)', () => {
  const tmp = tempDir('fraud-eo-');
  let input: string;
  let transactions: Transaction[];
  let clean: string;
  const namespaces: string[] = [];
  const ns = () => {
    const n = uniqueNamespace('fraud-eo');
    namespaces.push(n);
    return n;
  };
  const fraud = async (args: string[], stdin?: string) => {
    const run = runTs(CLI, [...args, '--partitions', '4', '--json', '--quiet'], { stdin });
    const code = await run.exit;
    if (code !== 0) throw new Error(`fraud ${args.join(' ')} exited ${code}:\n${run.err.join('')}`);
    return JSON.parse(run.out.join('')) as RunSummary;
  };

  beforeAll(async () => {
    transactions = generate({ accounts: 150, tx: 6_000, seed: 7, fraudRate: 0.25 }).transactions;
    input = path.join(tmp(), 'tx.ndjson');
    await fs.writeFile(input, transactions.map((t) => JSON.stringify(t)).join('\n') + '\n');
    clean = path.join(tmp(), 'clean.ndjson');
    const summary = await fraud(['--input', input, '--output', clean, '--namespace', ns()]);
    expect(summary).toMatchObject({ transactions: 6_000, bad: 0 });
  }, 60_000);

  afterAll(async () => {
    for (const n of namespaces) await cleanupNamespace(redisUrl(), n);
  });

  it('the clean run wrote each alert once', async () => {
    const alerts = await readAlerts(clean);
    expect(alerts.length).toBeGreaterThan(30);
    const keys = alerts.map((a) => `${a.accountId}/${a.rule}/${a.txIds.join(',')}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(new Set(alerts.map((a) => a.rule))).toEqual(new Set(['velocity', 'amount-spike', 'impossible-travel', 'card-testing']));
  });

  it('the same file fed twice gives the same alerts file: a second run, and one run reading it twice', async () => {
    const namespace = ns();
    const output = path.join(tmp(), 'twice.ndjson');
    await fraud(['--input', input, '--output', output, '--namespace', namespace]);
    const again = await fraud(['--input', input, '--output', output, '--namespace', namespace]);
    expect(again.transactions).toBe(6_000);
    expect(Object.values(again.counts.alerts).reduce((a, b) => a + b, 0)).toBe(0);
    expect(await fs.readFile(output, 'utf8')).toBe(await fs.readFile(clean, 'utf8'));

    const doubled = path.join(tmp(), 'doubled.ndjson');
    const text = await fs.readFile(input, 'utf8');
    const summary = await fraud(['--input', '-', '--output', doubled, '--namespace', ns()], text + text);
    expect(summary.transactions).toBe(12_000);
    expect(await fs.readFile(doubled, 'utf8')).toBe(await fs.readFile(clean, 'utf8'));

    // Each transaction was applied once.
    const detector = await createFraudDetector({ redis: redisUrl(), namespace, partitions: 4, worker: false });
    try {
      const perAccount = new Map<string, number>();
      for (const t of transactions) perAccount.set(t.accountId, (perAccount.get(t.accountId) ?? 0) + 1);
      for (const [account, n] of [...perAccount].slice(0, 40)) expect(await detector.account(account)).toMatchObject({ txCount: n, seq: n });
    } finally {
      await detector.close();
    }
  }, 90_000);

  it('a run killed with kill -9 halfway, then restarted, gives the same alerts file as a clean run', async () => {
    const expected = (await readAlerts(clean)).length;
    const namespace = ns();
    const output = path.join(tmp(), 'killed.ndjson');
    // Paced, so that the kill lands while transactions are still being read and scored.
    const first = runTs(CLI, ['--input', input, '--output', output, '--namespace', namespace, '--partitions', '4', '--rate', '1500', '--quiet']);
    const checkpointed = async () => {
      try {
        return (JSON.parse(await fs.readFile(`${output}.checkpoint`, 'utf8')) as { alerts: number }).alerts;
      } catch {
        return 0;
      }
    };
    await waitUntil(async () => (await checkpointed()) >= expected / 2, `half of the ${expected} alerts in the checkpoint`, 40_000);
    first.child.kill('SIGKILL');
    expect(await first.exit).toBe(137);
    const atKill = (await fs.readFile(output, 'utf8')).split('\n').filter(Boolean).length;
    expect(atKill).toBeLessThan(expected);
    // Lines written after the last checkpoint may be in the file: the restart cuts them and reads them again.
    await sleep(100);
    const second = await fraud(['--input', input, '--output', output, '--namespace', namespace]);
    expect(second.transactions).toBe(6_000);
    expect(await fs.readFile(output, 'utf8')).toBe(await fs.readFile(clean, 'utf8'));
  }, 120_000);
});
