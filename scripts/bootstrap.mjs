// keyflow tooling bootstrap: dependencies + a Redis to talk to.
//
// Plain Node ESM using only Node built-ins: it runs before `npm install`.
// The redis-server process logic lives in ./lib/redis-server.cjs (shared with
// spec/helpers/redis.ts, which Jest loads as CommonJS), the is-node_modules-current
// decision in ./lib/deps.cjs.
//
// Exports:
//   ensureDeps()                -> boolean (true if it installed)
//   ensureRedis({ purpose })    -> Promise<{ url, stop(), ... }>
//   ensureChromium()            -> path of chromium (installs it with apt-get when it may)
//   runChild(cmd, args, opts)   -> Promise<exit code>, forwarding SIGINT/SIGTERM/SIGHUP
//   runTsWithRedis(entry, args, { purpose }), ROOT

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import lib from './lib/redis-server.cjs';
import deps from './lib/deps.cjs';

const { depsPlan } = deps;

export const ROOT = lib.ROOT;

const log = (...a) => console.error('[keyflow]', ...a);

// ---------------------------------------------------------------------------
// dependencies

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
 * Returns npm's exit status, and whether npm refused the lock as out of sync (EUSAGE).
 * npm >= 10.6 prefixes its error lines `npm error`, older ones `npm ERR!`: both are matched.
 */
function npmCi(root) {
  const args = ['ci', '--no-audit', '--no-fund'];
  log(`$ npm ${args.join(' ')}`);
  const r = spawnSync('npm', args, { cwd: root, env: npmEnv(), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`could not run npm: ${r.error.message}`);
  if (r.status === 0) {
    process.stdout.write(r.stdout || '');
    process.stderr.write(r.stderr || '');
    return { status: 0, outOfSync: false };
  }
  const outOfSync = /npm (?:ERR!|error) code EUSAGE/.test(`${r.stdout || ''}${r.stderr || ''}`);
  let lines = `${r.stdout || ''}${r.stderr || ''}`.split('\n');
  const usage = lines.findIndex((l) => /^npm (?:ERR!|error) (Clean install a project|Usage:)/.test(l));
  if (usage > 0) lines = lines.slice(0, usage);
  const shown = lines.filter((l) => l.trim() && !/^npm (?:ERR!|error)\s*$/.test(l) && !/Unknown (user|env|project) config/.test(l));
  process.stderr.write(`${shown.slice(0, 25).join('\n')}${shown.length > 25 ? `\n… (${shown.length - 25} more lines)` : ''}\n`);
  return { status: r.status ?? 1, outOfSync };
}

/** Does `node --import tsx` actually transpile TypeScript (i.e. is esbuild's binary usable)? */
function tsxWorks(root = ROOT) {
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
 * Make node_modules match package.json + package-lock.json (./lib/deps.cjs decides):
 * `npm install` when the lock is missing or does not list package.json's dependencies
 * (it writes the lock), `npm ci` when node_modules differs from the lock. Then checks
 * that tsx/esbuild runs. Returns true if it installed.
 */
export function ensureDeps({ root = ROOT } = {}) {
  const plan = depsPlan(root);
  if (!plan) return false;
  log(`installing dependencies (${plan.reason})`);
  let action = plan.action;
  let status;
  if (action === 'ci') {
    const ci = npmCi(root);
    status = ci.status;
    if (ci.outOfSync) {
      // npm ci also refuses a lock that lacks the optional packages of other platforms, which
      // a registry mirror without them makes npm write: `npm install` installs the same tree.
      log('`npm ci` refused the lock as out of sync with package.json (see above); installing with `npm install`');
      action = 'install';
      status = npm(['install', '--no-audit', '--no-fund'], root);
    }
  } else status = npm(['install', '--no-audit', '--no-fund'], root);
  if (status !== 0) throw new Error(`\`npm ${action}\` failed (npm exit code ${status}; see above)`);

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

// ---------------------------------------------------------------------------
// system packages (Debian/Ubuntu)

let aptUpdated = false;

/**
 * `apt-get install -y <pkg>` for a system package the tooling needs (`what`: what for),
 * as root, or through sudo when it needs no password (CI users); never prompts.
 * Runs `apt-get update` once per process. Returns null when installed, else why not.
 */
function aptInstall(pkg, what) {
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).error) return 'apt-get is not available on this system';
  if (!asRoot && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status !== 0) return 'not root, and sudo needs a password';
  const aptGet = (...args) => {
    const argv = [...(asRoot ? [] : ['sudo', '-n']), 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args];
    log(`$ ${argv.join(' ')}`);
    const r = spawnSync(argv[0], argv.slice(1), { stdio: 'inherit' });
    return r.error ? r.error.message : r.status === 0 ? null : `${args[0]} exited with ${r.status ?? r.signal}`;
  };
  log(`${pkg} not found (${what}); installing it`);
  let failed = aptUpdated ? null : aptGet('update', '-q');
  if (!failed) aptUpdated = true;
  if (!failed) failed = aptGet('install', '-y', '-q', pkg);
  return failed && `apt-get: ${failed}`;
}

// ---------------------------------------------------------------------------
// Chromium (the ride-matching browser spec drives it with playwright-core)

const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

/**
 * The path of a Chromium for the browser spec: $CHROMIUM_PATH, or Debian's
 * `chromium`, installed with apt-get first when it is missing (see aptInstall).
 * Throws with the command to run otherwise (the spec then fails saying so).
 */
export function ensureChromium() {
  if (process.env.CHROMIUM_PATH) {
    if (fs.existsSync(process.env.CHROMIUM_PATH)) return process.env.CHROMIUM_PATH;
    throw new Error(`CHROMIUM_PATH=${process.env.CHROMIUM_PATH} does not exist`);
  }
  const find = () => CHROMIUM_PATHS.find((p) => fs.existsSync(p));
  let found = find();
  let notInstalled = '';
  if (!found) {
    notInstalled = aptInstall('chromium', 'the browser spec needs it') ?? '';
    found = find();
  }
  if (!found) {
    throw new Error(
      `chromium is not installed${notInstalled ? ` (${notInstalled})` : ''}; the browser spec ` +
        '(spec/apps/ride-matching/browser.spec.ts) needs it: `sudo apt-get install -y chromium`, or set CHROMIUM_PATH',
    );
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
    const notInstalled = aptInstall('redis-server', 'no REDIS_URL answering, so a private one is started');
    bin = lib.findRedisServerBinary();
    if (!bin) throw new Error(`${notInstalled ? `${notInstalled}.\n` : ''}${lib.missingRedisMessage()}`);
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
 * Install deps if needed, find or start Redis, run `node <nodeFlags> --import tsx <entry> args` with
 * REDIS_URL set, stop Redis after the child exited, and exit with its code.
 * What `npm start` and `npm run bench` share.
 */
export async function runTsWithRedis(entry, args, { purpose, nodeFlags = [] }) {
  let redis;
  try {
    ensureDeps();
    redis = await ensureRedis({ purpose });
  } catch (e) {
    console.error(`[keyflow] ${e.message}`);
    process.exit(1);
  }
  let code = 1;
  // KEYFLOW_REDIS_PRIVATE=1: the Redis was started for this run (the bench then sets its housekeeping).
  const env = { ...process.env, REDIS_URL: redis.url, KEYFLOW_REDIS_PRIVATE: '1' };
  if (redis.external) delete env.KEYFLOW_REDIS_PRIVATE;
  try {
    code = await runChild(process.execPath, [...nodeFlags, '--import', 'tsx', entry, ...args], { env });
  } catch (e) {
    console.error(`[keyflow] could not run ${entry}: ${e.message}`);
  } finally {
    await redis.stop();
  }
  process.exit(code);
}
