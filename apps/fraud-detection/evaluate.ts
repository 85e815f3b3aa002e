/**
 * The evaluator's command line: precision and recall per rule and overall,
 * and, when it runs the detector itself, throughput and alert latency.
 *
 *   npm run fraud:evaluate -- --input tx.ndjson --labels labels.ndjson     run the worker on a fresh namespace, then score
 *   npm run fraud:evaluate -- --alerts alerts.ndjson --labels labels.ndjson   score an alerts file of an earlier run
 */
import { createReadStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { readAlerts } from './alerts-file';
import { applySetting, type RulesOverrides } from './config';
import { createFraudDetector } from './detector';
import { evaluateAlerts, evaluationRows, readIncidents, type Evaluation } from './evaluator';
import { formatSummary, table, type RunSummary } from './report';
import { runInput } from './run';
import { intArg, namespaceArg, numberArg, redisUrl, runProgram, shutdownSignal, userPath } from './cli-common';

interface EvaluateOptions {
  labels: string;
  alerts?: string;
  input?: string;
  output?: string;
  namespace?: string;
  partitions: number;
  set: string[];
  batch: number;
  rate?: number;
  json: boolean;
  quiet: boolean;
}

/** Run the worker over `input` in a fresh namespace; the alerts file and the run's summary. */
async function runDetector(opts: EvaluateOptions): Promise<{ alertsPath: string; summary: RunSummary }> {
  const namespace = opts.namespace ?? `fraud-eval-${Date.now().toString(36)}`;
  let rules: RulesOverrides = {};
  for (const s of opts.set) rules = applySetting(rules, s);
  const alertsPath = opts.output ? userPath(opts.output) : path.join(os.tmpdir(), `${namespace}-alerts.ndjson`);
  const inputPath = userPath(opts.input!);
  const detector = await createFraudDetector({ redis: redisUrl(), namespace, partitions: opts.partitions, rules });
  try {
    const summary = await runInput({
      detector,
      input: createReadStream(inputPath),
      source: inputPath,
      inputBytes: (await fs.stat(inputPath)).size,
      output: alertsPath,
      batchSize: opts.batch,
      rate: opts.rate,
      quiet: opts.quiet,
      signal: shutdownSignal(),
    });
    return { alertsPath, summary };
  } finally {
    await detector.close();
  }
}

const program = new Command()
  .name('fraud:evaluate')
  .description('precision and recall of the fraud alerts against the labels; throughput and latency when it runs the worker')
  .requiredOption('--labels <file>', 'labels (incidents) written by fraud:generate')
  .option('--alerts <file>', 'score this alerts file instead of running the worker')
  .option('--input <file>', 'transactions to run the worker on (a fresh namespace)')
  .option('--output <file>', 'with --input: where the alerts go (default: a temporary file)')
  .option('--namespace <ns>', 'with --input: the namespace (default: a fresh one)', namespaceArg)
  .option('--partitions <n>', 'with --input: partitions', intArg(1, 16_384), 16)
  .option('--set <path=value>', 'with --input: one threshold, e.g. velocity.maxCount=10 (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
  .option('--batch <n>', 'with --input: transactions per submit', intArg(1, 10_000), 500)
  .option('--rate <tx/s>', 'with --input: offered load (default: as fast as possible)', numberArg(1, 10_000_000))
  .option('--json', 'print the report as JSON', false)
  .option('--quiet', 'no progress output', false)
  .action(async (opts: EvaluateOptions) => {
    if (!opts.alerts === !opts.input) throw new Error('give either --alerts FILE (score a file) or --input FILE (run the worker, then score)');
    const incidents = await readIncidents(userPath(opts.labels));
    let summary: RunSummary | undefined;
    let alertsPath = opts.alerts ? userPath(opts.alerts) : undefined;
    if (opts.input) ({ alertsPath, summary } = await runDetector(opts));
    const evaluation: Evaluation = evaluateAlerts(await readAlerts(alertsPath!), incidents);
    if (opts.json) {
      process.stdout.write(JSON.stringify({ evaluation, run: summary }) + '\n');
      return;
    }
    const lines: string[] = [];
    if (summary) lines.push(formatSummary(summary), '');
    lines.push(`precision / recall (${alertsPath} against ${opts.labels}):`, ...table(evaluationRows(evaluation)));
    process.stdout.write(lines.join('\n') + '\n');
  });

if (require.main === module) runProgram(program);
