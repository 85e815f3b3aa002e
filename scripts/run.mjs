// Generic runner: node scripts/run.mjs <file.ts> [args…]
// = install deps if needed + private Redis (purpose = file basename, or REDIS_URL)
//   + node --import tsx <file> args, with REDIS_URL set. Used by `npm run bench`.
import path from 'node:path';
import { ensureDeps, ensureRedis, runChild } from './bootstrap.mjs';
import { resolveEntry } from './entry.mjs';

if (!process.argv[2]) {
  console.error('usage: node scripts/run.mjs <file.ts> [args…]');
  process.exit(2);
}
const entry = resolveEntry(process.argv[2]);
const args = process.argv.slice(3);
const purpose = path.basename(entry).replace(/\.[cm]?[jt]s$/, '');

let redis;
try {
  ensureDeps();
  redis = await ensureRedis({ purpose });
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
  console.error(`[keyflow] could not run ${entry}: ${e.message}`);
} finally {
  await redis.stop();
}
process.exit(code);
