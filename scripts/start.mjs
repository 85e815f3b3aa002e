// `npm start`: install deps if needed, start a private Redis (or use REDIS_URL),
// run the app with tsx, stop Redis when the app exits.
//   npm start                        runs apps/main.ts: the ride-matching service + simulator
//   npm start -- --port 8080 …       options for apps/main.ts (npm start -- --help lists them)
//   npm start -- bank …              apps/main.ts runs the bank example instead
//   npm start -- apps/other.ts a b   runs another entry file with arguments
// SIGINT/SIGTERM are forwarded to the app; Redis stays up until the app has exited.
import { runTsWithRedis } from './bootstrap.mjs';
import { resolveEntry } from './entry.mjs';

// An entry file is named by its extension; anything else is an argument of the default entry.
const first = process.argv[2];
const explicit = first !== undefined && /\.[cm]?[jt]s$/.test(first);
const entry = resolveEntry(explicit ? first : 'apps/main.ts');
const args = process.argv.slice(explicit ? 3 : 2);

await runTsWithRedis(entry, args, { purpose: 'start' });
