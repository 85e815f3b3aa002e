/**
 * What `npm start` runs. Until the ride-matching service exists: the bank
 * example (apps/bank/example.ts), a short end-to-end run of keyflow.
 *
 *   npm start                                  (a private Redis, default workload)
 *   npm start -- apps/main.ts --accounts 4 --events 500 --rate 100
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx apps/main.ts --help
 */
import { parseBankArgs, runBankExample, USAGE, UsageError } from './bank/example';

async function main(): Promise<number> {
  let opts;
  try {
    opts = parseBankArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (!opts) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  // SIGINT/SIGTERM: the example closes the actor system (system.close()) and resolves; a second signal exits at once.
  const controller = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (controller.signal.aborted) process.exit(sig === 'SIGINT' ? 130 : 143);
      controller.abort(sig);
    });
  }
  return runBankExample({ ...opts, signal: controller.signal });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
