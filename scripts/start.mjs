// `npm start`: install deps if needed, start a private Redis (or use REDIS_URL),
// run the app with tsx, stop Redis when the app exits.
//   npm start                      runs apps/main.ts
//   npm start -- apps/other.ts a b runs another entry with arguments
// SIGINT/SIGTERM are forwarded to the app; Redis stays up until the app has exited.
import { ensureDeps, ensureRedis, runChild } from './bootstrap.mjs';
import { resolveEntry } from './entry.mjs';

// `npm start -- --flag ...` passes flags to the default entry; `npm start -- file.ts ...` picks another.
const first = process.argv[2];
const explicit = first !== undefined && !first.startsWith('-');
const entry = resolveEntry(explicit ? first : 'apps/main.ts');
const args = process.argv.slice(explicit ? 3 : 2);

let redis;
try {
  ensureDeps();
  redis = await ensureRedis({ purpose: 'start' });
} catch (e) {
  console.error(`[keyflow] ${e.message}`);
  process.exit(1);
}

let code = 1;
try {
  code = await runChild(process.execPath, ['--import', 'tsx', entry, ...args], {
    env: { ...process.env, REDIS_URL: redis.url },
  });
} catch (e) {
  console.error(`[keyflow] could not start ${entry}: ${e.message}`);
} finally {
  await redis.stop();
}
process.exit(code);
