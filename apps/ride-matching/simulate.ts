/**
 * `npm run simulate`: simulated drivers and riders against a running service.
 *   npm run simulate -- --url http://127.0.0.1:3000 --drivers 100 --ride-rate 3 --duration 60
 */
import { runSimulator } from './cli';

runSimulator(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
