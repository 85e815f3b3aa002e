/**
 * The labelled data generator's command line.
 *
 *   npm run fraud:generate -- --accounts 5000 --tx 500000 --seed 1
 *     → tx.ndjson (transactions in arrival order) and labels.ndjson (fraud incidents)
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { Command } from 'commander';
import { generate, GENERATOR_DEFAULTS, type GeneratedData, type GeneratorOptions } from './generator';
import { intArg, numberArg, runProgram, userPath } from './cli-common';
import { table } from './report';

async function writeLines(path: string, items: readonly unknown[]): Promise<void> {
  const out: WriteStream = createWriteStream(path);
  const done = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  const CHUNK = 2_000;
  for (let i = 0; i < items.length; i += CHUNK) {
    const ok = out.write(items.slice(i, i + CHUNK).map((x) => JSON.stringify(x)).join('\n') + '\n');
    if (!ok) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  out.end();
  await done;
}

/** What was generated, as table rows. */
export function generatedRows(data: GeneratedData): string[][] {
  const byPattern = new Map<string, { incidents: number; tx: number }>();
  for (const inc of data.incidents) {
    const row = byPattern.get(inc.pattern) ?? { incidents: 0, tx: 0 };
    row.incidents++;
    row.tx += inc.txIds.length;
    byPattern.set(inc.pattern, row);
  }
  return [
    ['', 'incidents', 'transactions'],
    ...[...byPattern].map(([p, r]) => [p, String(r.incidents), String(r.tx)]),
    ['all transactions', '', String(data.transactions.length)],
    ['delivered late', '', String(data.late.length)],
  ];
}

const program = new Command()
  .name('fraud:generate')
  .description('generate labelled card transactions: realistic accounts with injected fraud incidents')
  .option('--accounts <n>', 'accounts', intArg(1, 10_000_000), GENERATOR_DEFAULTS.accounts)
  .option('--tx <n>', 'transactions in all', intArg(1, 100_000_000), GENERATOR_DEFAULTS.tx)
  .option('--seed <n>', 'seed (same seed and options, same files)', intArg(0, 2 ** 32 - 1), GENERATOR_DEFAULTS.seed)
  .option('--days <n>', 'days covered', intArg(1, 3650), GENERATOR_DEFAULTS.days)
  .option('--fraud-rate <p>', 'share of accounts with a fraud incident', numberArg(0, 1), GENERATOR_DEFAULTS.fraudRate)
  .option('--late-rate <p>', 'share of normal transactions delivered 6–48 h late', numberArg(0, 1), GENERATOR_DEFAULTS.lateRate)
  .option('--online-abroad-rate <p>', 'share of normal purchases from online shops registered abroad', numberArg(0, 1), GENERATOR_DEFAULTS.onlineAbroadRate)
  .option('--out <file>', 'transactions file', 'tx.ndjson')
  .option('--labels <file>', 'labels file (incidents)', 'labels.ndjson')
  .action(async (opts: Omit<GeneratorOptions, 'start'> & { out: string; labels: string }) => {
    const started = Date.now();
    const { out, labels, ...options } = opts;
    const data = generate(options);
    await writeLines(userPath(out), data.transactions);
    await writeLines(userPath(labels), data.incidents);
    process.stdout.write(
      [
        `generated in ${((Date.now() - started) / 1000).toFixed(1)} s (seed ${opts.seed}): ${out}, ${labels}`,
        ...table(generatedRows(data)),
      ].join('\n') + '\n',
    );
  });

if (require.main === module) runProgram(program);
