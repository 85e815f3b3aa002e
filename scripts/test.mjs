// `npm test`: install deps if needed, typecheck once, start a private Redis, run Jest.
//   npm test                       all specs
//   npm test -- spec/foo.spec.ts   extra args go to jest
// Env: REDIS_URL=redis://…  use that Redis instead of a private one (if it answers PING)
//      KEYFLOW_SKIP_TYPECHECK=1  skip the tsc step
import path from 'node:path';
import { ROOT, ensureDeps, ensureRedis, runChild } from './bootstrap.mjs';

const bin = (name) => path.join(ROOT, 'node_modules', '.bin', name);

try {
  ensureDeps();
} catch (e) {
  console.error(`[keyflow] ${e.message}`);
  process.exit(1);
}

if (process.env.KEYFLOW_SKIP_TYPECHECK !== '1') {
  console.error('[keyflow] typecheck: tsc --noEmit -p tsconfig.json');
  const code = await runChild(process.execPath, [bin('tsc'), '--noEmit', '-p', 'tsconfig.json'], { cwd: ROOT });
  if (code !== 0) {
    console.error(`[keyflow] typecheck failed (tsc exit ${code}); not running tests`);
    process.exit(code);
  }
}

let redis;
try {
  redis = await ensureRedis({ purpose: 'test' });
} catch (e) {
  console.error(`[keyflow] ${e.message}`);
  process.exit(1);
}

let code = 1;
try {
  code = await runChild(process.execPath, [bin('jest'), ...process.argv.slice(2)], {
    cwd: ROOT,
    env: { ...process.env, REDIS_URL: redis.url },
  });
} catch (e) {
  console.error(`[keyflow] could not run jest: ${e.message}`);
} finally {
  await redis.stop();
}
process.exit(code);
