/**
 * What `npm start` runs: the ride-matching service (apps/ride-matching) with
 * its simulator, on the private Redis that scripts/start.mjs provides.
 *
 *   npm start                                   the service + simulator; prints the URL of the live page
 *   npm start -- --help                         its options (port, workers, timeouts, simulator, …)
 *   npm start -- --no-simulator --port 8080     serve only
 *   npm start -- bank [--accounts 4 …]          the bank example (apps/bank) instead
 */
import { parseBankArgs, runBankExample, USAGE, UsageError } from './bank/example';
import { runService } from './ride-matching/cli';

async function runBank(argv: string[]): Promise<number> {
  let opts;
  try {
    opts = parseBankArgs(argv);
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

const argv = process.argv.slice(2);
(argv[0] === 'bank' ? runBank(argv.slice(1)) : runService(argv)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
