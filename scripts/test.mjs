// `npm test`: install deps if needed, typecheck once, start a private Redis, run Jest.
//   npm test                       all specs
//   npm test -- spec/foo.spec.ts   extra args go to jest
// Env: REDIS_URL=redis://…  use that Redis instead of a private one (if it answers PING)
//      KEYFLOW_SKIP_TYPECHECK=1  skip the tsc step
//      CHROMIUM_PATH=…  the chromium of the browser spec (default: Debian's, installed with apt-get when root or with passwordless sudo)
import path from 'node:path';
import { ROOT, ensureChromium, ensureDeps, ensureRedis, runChild } from './bootstrap.mjs';

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

// The browser spec needs chromium: found (or installed) when the run includes it; if that fails,
// the spec fails with the reason (it never skips).
const jestArgs = process.argv.slice(2);
const env = { ...process.env, REDIS_URL: redis.url };
if (!jestArgs.some((a) => !a.startsWith('-')) || jestArgs.some((a) => /ride-matching|browser/.test(a))) {
  try {
    env.CHROMIUM_PATH = ensureChromium();
  } catch (e) {
    console.error(`[keyflow] ${e.message}`);
  }
}

let code = 1;
try {
  code = await runChild(process.execPath, [bin('jest'), ...jestArgs], { cwd: ROOT, env });
} catch (e) {
  console.error(`[keyflow] could not run jest: ${e.message}`);
} finally {
  await redis.stop();
}
process.exit(code);
