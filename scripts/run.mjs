// Generic runner: node scripts/run.mjs <file.ts> [args…]
// = install deps if needed + private Redis (purpose = file basename, or REDIS_URL)
//   + node --import tsx <file> args, with REDIS_URL set. Used by `npm run bench`.
import path from 'node:path';
import { runTsWithRedis } from './bootstrap.mjs';
import { resolveEntry } from './entry.mjs';

if (!process.argv[2]) {
  console.error('usage: node scripts/run.mjs <file.ts> [args…]');
  process.exit(2);
}
const entry = resolveEntry(process.argv[2]);
const args = process.argv.slice(3);
const purpose = path.basename(entry).replace(/\.[cm]?[jt]s$/, '');

await runTsWithRedis(entry, args, { purpose });
