/**
 * The fraud-detection worker's command line.
 *
 *   npm run fraud -- --input tx.ndjson --output alerts.ndjson     a file (or - for stdin)
 *   npm run fraud -- --stream transactions --output alerts.ndjson a Redis stream, until Ctrl-C
 *   npm run fraud -- review acct-42 --decision clear               (needs REDIS_URL: a lasting Redis)
 *   npm run fraud -- account acct-42
 *
 * `npm run` starts a private Redis for the run unless REDIS_URL is set.
 */
import { createReadStream, promises as fs } from 'node:fs';
import { Command, Option } from 'commander';
import type { Cluster, Redis } from 'ioredis';
import { applySetting, resolveRules, type RulesOverrides } from './config';
import { DEFAULT_NAMESPACE, appRedis, createFraudDetector, type FraudDetector } from './detector';
import { FraudMetrics } from './metrics';
import { formatSummary, type RunSummary } from './report';
import { runInput } from './run';
import { runStream } from './run-stream';
import { intArg, namespaceArg, numberArg, redisUrl, runProgram, shutdownSignal, userPath } from './cli-common';

interface NamespaceOptions {
  namespace: string;
  partitions: number;
  rules?: string;
  set: string[];
}

interface RunOptions extends NamespaceOptions {
  input?: string;
  output?: string;
  stream?: string;
  group: string;
  consumer?: string;
  batch: number;
  rate?: number;
  errors?: string;
  metricsPort?: number;
  metrics: boolean;
  quiet: boolean;
  json: boolean;
}

async function loadRules(opts: { rules?: string; set: string[] }): Promise<RulesOverrides> {
  let overrides: RulesOverrides = {};
  if (opts.rules) {
    const text = await fs.readFile(userPath(opts.rules), 'utf8');
    try {
      overrides = JSON.parse(text) as RulesOverrides;
    } catch (err) {
      throw new Error(`--rules ${opts.rules}: not JSON (${(err as Error).message})`);
    }
  }
  for (const s of opts.set) overrides = applySetting(overrides, s);
  resolveRules(overrides);
  return overrides;
}

function print(summary: RunSummary, json: boolean): void {
  process.stdout.write(json ? JSON.stringify(summary) + '\n' : formatSummary(summary) + '\n');
}

async function run(opts: RunOptions): Promise<void> {
  if (!opts.input && !opts.stream) throw new Error('give --input FILE (or - for stdin) or --stream NAME');
  if (opts.input && opts.stream) throw new Error('give --input or --stream, not both');
  const rules = await loadRules(opts);
  const signal = shutdownSignal();
  const detector: FraudDetector = await createFraudDetector({ redis: redisUrl(), namespace: opts.namespace, partitions: opts.partitions, rules });
  const metrics = opts.metrics && (opts.stream || opts.metricsPort !== undefined) ? new FraudMetrics() : undefined;
  let redis: Redis | Cluster | undefined;
  try {
    if (metrics) {
      const port = await metrics.listen(opts.metricsPort ?? 9464);
      process.stderr.write(`[fraud] metrics at http://127.0.0.1:${port}/metrics\n`);
    }
    if (opts.stream) {
      redis = appRedis(redisUrl());
      const summary = await runStream({
        detector,
        redis,
        consumer: { stream: opts.stream, group: opts.group, consumer: opts.consumer, count: opts.batch },
        output: opts.output ? userPath(opts.output) : undefined,
        metrics,
        signal,
        statusEveryMs: opts.quiet ? 0 : 10_000,
        onReady: () => process.stderr.write(`[fraud] reading stream ${opts.stream} as ${opts.group}/${opts.consumer ?? 'default consumer'}\n`),
      });
      print(summary, opts.json);
      return;
    }
    const fromStdin = opts.input === '-';
    const inputPath = fromStdin ? undefined : userPath(opts.input!);
    const inputBytes = inputPath ? (await fs.stat(inputPath)).size : undefined;
    const summary = await runInput({
      detector,
      input: inputPath ? createReadStream(inputPath) : process.stdin,
      source: inputPath ?? 'stdin',
      inputBytes,
      output: opts.output ? userPath(opts.output) : undefined,
      errorsFile: opts.errors ? userPath(opts.errors) : undefined,
      batchSize: opts.batch,
      rate: opts.rate,
      quiet: opts.quiet,
      metrics,
      signal,
    });
    print(summary, opts.json);
    if (summary.interrupted) process.exitCode = 130;
  } finally {
    await metrics?.close();
    redis?.disconnect();
    await detector.close();
  }
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** The options naming a namespace and its thresholds (every worker of a namespace must give the same). */
function namespaceOptions(cmd: Command): Command {
  return cmd
    .option('--namespace <ns>', 'keyflow namespace', namespaceArg, DEFAULT_NAMESPACE)
    .option('--partitions <n>', 'partitions of the namespace (fixed once created)', intArg(1, 16_384), 16)
    .option('--rules <file>', 'thresholds, JSON (partial: the rest keeps its defaults; see `fraud rules`)')
    .option('--set <path=value>', 'one threshold, e.g. velocity.maxCount=10 (repeatable)', collect, [] as string[]);
}

export function buildProgram(): Command {
  const program = new Command()
    .name('fraud')
    .description('keyflow fraud-detection worker: every account a persistent actor scoring its transactions, alerts exactly once')
    .showHelpAfterError();

  namespaceOptions(program.command('run', { isDefault: true }))
    .description('score transactions from an NDJSON file, stdin or a Redis stream')
    .option('--input <file>', "NDJSON transactions, one per line ('-' for stdin)")
    .option('--output <file>', 'alerts file (NDJSON of fraud.alert; resumes from <file>.checkpoint)')
    .option('--stream <name>', 'read a Redis stream with a consumer group (runs until Ctrl-C)')
    .option('--group <name>', 'consumer group of --stream', 'fraud-detection')
    .option('--consumer <name>', 'consumer name in the group (stable per worker; default fraud-<hostname>)')
    .option('--batch <n>', 'transactions per submit (sendMany)', intArg(1, 10_000), 500)
    .option('--rate <tx/s>', 'offered load (default: as fast as possible)', numberArg(1, 10_000_000))
    .option('--errors <file>', 'write every bad input line there (NDJSON { line, error, text })')
    .option('--metrics-port <port>', 'serve Prometheus metrics at /metrics (0: any free port; --stream default 9464)', intArg(0, 65_535))
    .option('--no-metrics', 'no metrics server')
    .option('--quiet', 'no progress output', false)
    .option('--json', 'print the summary as JSON', false)
    .action((opts: RunOptions) => run(opts));

  namespaceOptions(program.command('review <accountId>'))
    .description("a review decision for an account: clear (→ normal) or block (→ blocked)")
    .addOption(new Option('--decision <decision>', 'the decision').choices(['clear', 'block']).makeOptionMandatory())
    .option('--reviewer <name>', 'who decided')
    .action(async (accountId: string, opts: NamespaceOptions & { decision: 'clear' | 'block'; reviewer?: string }) => {
      const detector = await createFraudDetector({ redis: redisUrl(), namespace: opts.namespace, partitions: opts.partitions, rules: await loadRules(opts) });
      try {
        await detector.review(accountId, opts.decision, { reviewer: opts.reviewer });
        await detector.drain({ timeoutMs: 30_000 });
        process.stdout.write(JSON.stringify(await detector.account(accountId)) + '\n');
      } finally {
        await detector.close();
      }
    });

  namespaceOptions(program.command('account <accountId>'))
    .description("an account's committed state")
    .action(async (accountId: string, opts: NamespaceOptions) => {
      const detector = await createFraudDetector({ redis: redisUrl(), namespace: opts.namespace, partitions: opts.partitions, rules: await loadRules(opts), worker: false });
      try {
        const view = await detector.account(accountId);
        if (!view) {
          process.stderr.write(`no account ${JSON.stringify(accountId)} in namespace ${opts.namespace}\n`);
          process.exitCode = 1;
          return;
        }
        process.stdout.write(JSON.stringify(view) + '\n');
      } finally {
        await detector.close();
      }
    });

  program
    .command('rules')
    .description('print the effective thresholds (defaults with --rules / --set applied) as JSON')
    .option('--rules <file>', 'thresholds (JSON)')
    .option('--set <path=value>', 'one threshold, e.g. velocity.maxCount=10 (repeatable)', collect, [] as string[])
    .action(async (opts: { rules?: string; set: string[] }) => {
      process.stdout.write(JSON.stringify(resolveRules(await loadRules(opts)), null, 2) + '\n');
    });

  return program;
}

if (require.main === module) runProgram(buildProgram());
