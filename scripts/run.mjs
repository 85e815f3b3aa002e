// Generic runner: node scripts/run.mjs [--node-option=<flag> …] <file.ts> [args…]
// = install deps if needed + private Redis (purpose = file basename, or REDIS_URL)
//   + node <flags> --import tsx <file> args, with REDIS_URL set. Used by `npm run bench`
//   (which runs with keyflow's worker flags, WORKER_NODE_FLAGS in actors/node-flags.ts).
import path from 'node:path';
import { runTsWithRedis } from './bootstrap.mjs';
import { resolveEntry } from './entry.mjs';

const argv = process.argv.slice(2);
const nodeFlags = [];
while (argv[0]?.startsWith('--node-option=')) nodeFlags.push(argv.shift().slice('--node-option='.length));
if (!argv[0]) {
  console.error('usage: node scripts/run.mjs [--node-option=<flag> …] <file.ts> [args…]');
  process.exit(2);
}
const entry = resolveEntry(argv[0]);
const args = argv.slice(1);
const purpose = path.basename(entry).replace(/\.[cm]?[jt]s$/, '');

await runTsWithRedis(entry, args, { purpose, nodeFlags });
