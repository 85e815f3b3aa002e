// `npm start`: install deps if needed, start a private Redis (or use REDIS_URL),
// run the app with tsx, stop Redis when the app exits.
//   npm start                      runs apps/main.ts
//   npm start -- apps/other.ts a b runs another entry with arguments
// SIGINT/SIGTERM are forwarded to the app; Redis stays up until the app has exited.
import { runTsWithRedis } from './bootstrap.mjs';
import { resolveEntry } from './entry.mjs';

// `npm start -- --flag ...` passes flags to the default entry; `npm start -- file.ts ...` picks another.
const first = process.argv[2];
const explicit = first !== undefined && !first.startsWith('-');
const entry = resolveEntry(explicit ? first : 'apps/main.ts');
const args = process.argv.slice(explicit ? 3 : 2);

await runTsWithRedis(entry, args, { purpose: 'start' });
