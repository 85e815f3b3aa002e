// keyflow tooling bootstrap: dependencies + a Redis to talk to.
//
// Plain Node ESM using only Node built-ins: it runs before `npm install`.
// The redis-server process logic lives in ./lib/redis-server.cjs (shared with
// spec/helpers/redis.ts, which Jest loads as CommonJS).
//
// Exports:
//   ensureDeps()                -> boolean (true if it installed)
//   ensureRedis({ purpose })    -> Promise<{ url, stop(), ... }>
//   ensureChromium()            -> path of chromium (installs it with apt-get when root)
//   runChild(cmd, args, opts)   -> Promise<exit code>, forwarding SIGINT/SIGTERM/SIGHUP
//   findRedisServerBinary(), freePort(), ROOT

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import lib from './lib/redis-server.cjs';

export const ROOT = lib.ROOT;
export const { findRedisServerBinary, freePort, pingUrl, redactUrl } = lib;

const log = (...a) => console.error('[keyflow]', ...a);

// ---------------------------------------------------------------------------
// dependencies

function mtimeMs(p) {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return null;
  }
}

/** Why node_modules needs (re)installing, or null if it is up to date. */
export function depsStaleReason(root = ROOT) {
  const hidden = mtimeMs(path.join(root, 'node_modules', '.package-lock.json'));
  if (hidden === null) return 'node_modules/.package-lock.json is missing';
  const pkg = mtimeMs(path.join(root, 'package.json'));
  const lock = mtimeMs(path.join(root, 'package-lock.json'));
  if (pkg !== null && pkg > hidden) return 'package.json is newer than node_modules';
  if (lock !== null && lock > hidden) return 'package-lock.json is newer than node_modules';
  for (const bin of ['tsc', 'jest', 'tsx']) {
    if (!fs.existsSync(path.join(root, 'node_modules', '.bin', bin))) return `node_modules/.bin/${bin} is missing`;
  }
  return null;
}

/**
 * Environment for a nested npm install. When we run under `npm test` / `npm start`,
 * npm exports every non-default config as npm_config_* — including
 * `allow-scripts` from our .npmrc — and npm 11 rejects a project-scoped install
 * that receives allow-scripts from the environment/CLI (EALLOWSCRIPTS). The nested
 * npm re-reads .npmrc itself, so dropping the variable loses nothing.
 */
function npmEnv() {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.toLowerCase() === 'npm_config_allow_scripts') delete env[k];
  }
  return env;
}

function npm(args, root) {
  log(`$ npm ${args.join(' ')}`);
  const r = spawnSync('npm', args, { cwd: root, stdio: 'inherit', env: npmEnv() });
  if (r.error) throw new Error(`could not run npm: ${r.error.message}`);
  return r.status ?? 1;
}

/**
 * `npm ci` with its output captured: on success it is replayed as is; on failure
 * only the diagnosis is shown, not the 60-line usage text npm appends to EUSAGE.
 */
function npmCi(root) {
  const args = ['ci', '--no-audit', '--no-fund'];
  log(`$ npm ${args.join(' ')}`);
  const r = spawnSync('npm', args, { cwd: root, env: npmEnv(), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`could not run npm: ${r.error.message}`);
  if (r.status === 0) {
    process.stdout.write(r.stdout || '');
    process.stderr.write(r.stderr || '');
    return 0;
  }
  let lines = `${r.stdout || ''}${r.stderr || ''}`.split('\n');
  const usage = lines.findIndex((l) => /^npm error (Clean install a project|Usage:)/.test(l));
  if (usage > 0) lines = lines.slice(0, usage);
  const shown = lines.filter((l) => l.trim() && !/^npm error\s*$/.test(l) && !/Unknown (user|env|project) config/.test(l));
  process.stderr.write(`${shown.slice(0, 25).join('\n')}${shown.length > 25 ? `\n… (${shown.length - 25} more lines)` : ''}\n`);
  return r.status ?? 1;
}

/** Does `node --import tsx` actually transpile TypeScript (i.e. is esbuild's binary usable)? */
export function tsxWorks(root = ROOT) {
  const dir = path.join(root, '.keyflow', 'tmp');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `tsx-check-${process.pid}.ts`);
  fs.writeFileSync(file, 'const answer: number = 40 + 2;\nprocess.stdout.write(String(answer));\n');
  try {
    const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: root, encoding: 'utf8', timeout: 60000 });
    if (r.status === 0 && r.stdout === '42') return { ok: true };
    return { ok: false, detail: (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(0, 8).join('\n') };
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/**
 * Install node_modules if missing or older than package.json / package-lock.json:
 * `npm ci` (falls back to `npm install` if there is no lockfile or `npm ci` refuses
 * it), then checks that tsx/esbuild runs. Returns true if it installed.
 */
export function ensureDeps({ root = ROOT } = {}) {
  const reason = depsStaleReason(root);
  if (!reason) return false;
  log(`installing dependencies (${reason})`);
  const hasLock = fs.existsSync(path.join(root, 'package-lock.json'));
  let status = hasLock ? npmCi(root) : 1;
  if (status !== 0) {
    if (hasLock) log('`npm ci` failed (see above; usually a lockfile out of sync with package.json) — retrying with `npm install`');
    status = npm(['install', '--no-audit', '--no-fund'], root);
  }
  if (status !== 0) throw new Error(`dependency installation failed (npm exit code ${status})`);

  let check = tsxWorks(root);
  if (!check.ok) {
    // esbuild ships its binary in an optional @esbuild/<platform> package and fixes
    // it up in a postinstall script; npm 11 only runs that script for packages
    // approved via allowScripts (.npmrc: allow-scripts=esbuild). Re-run it.
    log(`tsx does not work after install:\n${check.detail}\nrunning \`npm rebuild esbuild\``);
    npm(['rebuild', 'esbuild'], root);
    check = tsxWorks(root);
    if (!check.ok) {
      throw new Error(
        `tsx (esbuild) still does not work after \`npm rebuild esbuild\`:\n${check.detail}\n` +
          'Check that optional dependencies are not omitted (npm config get omit) and that ' +
          '.npmrc contains allow-scripts=esbuild.',
      );
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// child processes + signals

const children = new Set();
let signalsInstalled = false;
let firstSignalAt = 0;

function onSignal(sig) {
  if (children.size > 0) {
    // Let the child shut down cleanly (it may still need Redis); we stop Redis once
    // it has exited. A repeated signal more than 1.5 s later force-kills it.
    // (Ctrl-C in a terminal reaches the child directly too, and `npm run` forwards
    // it as well, so near-simultaneous duplicates count as one.)
    const now = Date.now();
    if (firstSignalAt && now - firstSignalAt > 1500) {
      log(`${sig} again: killing child process(es)`);
      for (const c of children) c.kill('SIGKILL');
      return;
    }
    if (!firstSignalAt) firstSignalAt = now;
    for (const c of children) {
      try {
        c.kill(sig);
      } catch {}
    }
    return;
  }
  lib.killAllSync();
  process.exit(128 + (os.constants.signals[sig] ?? 1));
}

function installSignalHandlers() {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => onSignal(sig));
}

/**
 * Spawn a child with inherited stdio, forwarding SIGINT/SIGTERM/SIGHUP to it.
 * Resolves with its exit code (128 + signal number if it died of a signal).
 */
export function runChild(cmd, args, { env = process.env, cwd = ROOT } = {}) {
  installSignalHandlers();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'inherit', env, cwd });
    children.add(child);
    child.once('error', (e) => {
      children.delete(child);
      reject(e);
    });
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve(code ?? 128 + (os.constants.signals[signal] ?? 1));
    });
  });
}

// ---------------------------------------------------------------------------
// Redis

function redisVersion(bin) {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  const m = /v=(\S+)/.exec(r.stdout || '');
  return m ? m[1] : 'unknown version';
}

function installRedisWithApt() {
  log('redis-server not found; running as root, installing it: apt-get update && apt-get install -y redis-server');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let st = lib.runSync('apt-get', ['update'], { env });
  if (st === 0) st = lib.runSync('apt-get', ['install', '-y', 'redis-server'], { env });
  if (st !== 0) throw new Error(`apt-get install redis-server failed (exit ${st}).\n${lib.missingRedisMessage()}`);
}

// ---------------------------------------------------------------------------
// Chromium (the ride-matching browser spec drives it with playwright-core)

const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

/**
 * The path of a Chromium for the browser spec: $CHROMIUM_PATH, or Debian's
 * `chromium`, installed with apt-get first when it is missing and we are root.
 * Throws with the command to run otherwise (the spec then fails saying so).
 */
export function ensureChromium() {
  if (process.env.CHROMIUM_PATH) {
    if (fs.existsSync(process.env.CHROMIUM_PATH)) return process.env.CHROMIUM_PATH;
    throw new Error(`CHROMIUM_PATH=${process.env.CHROMIUM_PATH} does not exist`);
  }
  let found = CHROMIUM_PATHS.find((p) => fs.existsSync(p));
  if (!found && typeof process.getuid === 'function' && process.getuid() === 0) {
    log('chromium not found (the browser spec needs it); running as root, installing it: apt-get update && apt-get install -y chromium');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let st = lib.runSync('apt-get', ['update'], { env });
    if (st === 0) st = lib.runSync('apt-get', ['install', '-y', 'chromium'], { env });
    if (st !== 0) log(`apt-get install chromium failed (exit ${st})`);
    found = CHROMIUM_PATHS.find((p) => fs.existsSync(p));
  }
  if (!found) {
    throw new Error('chromium is not installed; the browser spec (spec/apps/ride-matching/browser.spec.ts) needs it: `sudo apt-get install -y chromium`, or set CHROMIUM_PATH');
  }
  return found;
}

/**
 * A Redis for `purpose` (test, start, bench, …).
 * - REDIS_URL set and answering PING within 1 s: use it; stop() is a no-op.
 * - otherwise: a private redis-server on a free 127.0.0.1 port, data under
 *   .keyflow/redis/<purpose>-<port>/ (AOF everysec, no RDB, noeviction);
 *   stop() shuts it down and removes the dir. It is also killed when this
 *   process exits or is interrupted.
 * Prints one line saying which Redis is used.
 */
export async function ensureRedis({ purpose = 'dev', quiet = false } = {}) {
  const say = quiet ? () => {} : log;
  const envUrl = process.env.REDIS_URL;
  if (envUrl) {
    if (await lib.pingUrl(envUrl, 1000)) {
      say(`Redis: using REDIS_URL=${lib.redactUrl(envUrl)} (PING ok)`);
      return { url: envUrl, external: true, port: null, pid: null, dir: null, logFile: null, stop: async () => {} };
    }
    say(`REDIS_URL=${lib.redactUrl(envUrl)} did not answer PING within 1 s; starting a private redis-server instead`);
  }

  let bin = process.env.KEYFLOW_REDIS_SERVER || lib.findRedisServerBinary();
  if (!bin) {
    if (typeof process.getuid === 'function' && process.getuid() === 0) {
      installRedisWithApt();
      bin = lib.findRedisServerBinary();
    }
    if (!bin) throw new Error(lib.missingRedisMessage());
  }

  installSignalHandlers();
  const srv = await lib.startRedisServer({ name: purpose, bin, detached: true, appendonly: true, appendfsync: 'everysec' });
  say(
    `Redis: private redis-server ${redisVersion(bin)} (pid ${srv.pid}) at ${srv.url}, ` +
      `data ${path.relative(process.cwd(), srv.dir) || srv.dir}, log ${path.relative(process.cwd(), srv.logFile)}`,
  );
  return {
    url: srv.url,
    external: false,
    port: srv.port,
    pid: srv.pid,
    dir: srv.dir,
    logFile: srv.logFile,
    stop: () => srv.stop(),
  };
}

/**
 * Install deps if needed, find or start Redis, run `node --import tsx <entry> args` with
 * REDIS_URL set, stop Redis after the child exited, and exit with its code.
 * What `npm start` and `npm run bench` share.
 */
export async function runTsWithRedis(entry, args, { purpose }) {
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
}
