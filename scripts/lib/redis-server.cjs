'use strict';
// Private redis-server management for keyflow's tooling.
//
// Plain CommonJS using only Node built-ins, so that it can be loaded
//   - by scripts/bootstrap.mjs (ESM) before `npm install` has run, and
//   - by spec/helpers/redis.ts under Jest (which cannot require ESM),
// keeping a single source of truth for "start / ping / kill / restart a Redis".
// Types: ./redis-server.d.cts

const net = require('node:net');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const REDIS_BASE_DIR = path.join(ROOT, '.keyflow', 'redis');

// ---------------------------------------------------------------------------
// RESP over a raw socket

function encodeCommand(args) {
  let out = `*${args.length}\r\n`;
  for (const a of args) {
    const s = String(a);
    out += `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  }
  return out;
}

/**
 * Send commands on one connection and resolve with the first line of each reply
 * (e.g. "+PONG", "-LOADING Redis is loading…", "+OK"). Multi-line replies are not
 * parsed: only use this for commands answering with a simple string / error.
 * If the server closes the connection before answering (SHUTDOWN), the missing
 * replies are null. Rejects on connect error or timeout.
 */
function rawCommands(target, commands, timeoutMs = 1000) {
  const { host = '127.0.0.1', port, tls: useTls = false } = target;
  return new Promise((resolve, reject) => {
    let buf = '';
    const replies = [];
    let done = false;
    const opts = { host, port };
    const sock = useTls
      ? require('node:tls').connect({ ...opts, servername: net.isIP(host) ? undefined : host })
      : net.connect(opts);
    const finish = (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else {
        while (replies.length < commands.length) replies.push(null);
        resolve(replies);
      }
    };
    const timer = setTimeout(
      () => finish(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.setEncoding('utf8');
    sock.once(useTls ? 'secureConnect' : 'connect', () => {
      sock.write(commands.map(encodeCommand).join(''));
    });
    sock.on('data', (chunk) => {
      buf += chunk;
      let idx;
      while ((idx = buf.indexOf('\r\n')) >= 0) {
        replies.push(buf.slice(0, idx));
        buf = buf.slice(idx + 2);
        if (replies.length === commands.length) return finish();
      }
    });
    sock.on('error', (err) => finish(err));
    sock.on('close', () => finish());
  });
}

/** Parse a redis:// or rediss:// URL into a raw-socket target + optional AUTH args. */
function parseRedisUrl(url) {
  const u = new URL(url);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new Error(`unsupported Redis URL scheme "${u.protocol}" in ${redactUrl(url)}`);
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  const port = u.port ? Number(u.port) : 6379;
  const user = decodeURIComponent(u.username || '');
  const pass = decodeURIComponent(u.password || '');
  let auth = null;
  if (pass) auth = user ? ['AUTH', user, pass] : ['AUTH', pass];
  else if (user) auth = ['AUTH', user]; // redis://:pass@ is the usual form; redis://pass@ is tolerated
  return { host, port, tls: u.protocol === 'rediss:', auth };
}

function redactUrl(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable REDIS_URL>';
  }
}

/** Resolves with the PING reply line ("+PONG", "-LOADING …", "-NOAUTH …") or rejects. */
async function pingRaw(target, timeoutMs = 1000) {
  const cmds = target.auth ? [target.auth, ['PING']] : [['PING']];
  const replies = await rawCommands(target, cmds, timeoutMs);
  const authReply = target.auth ? replies[0] : null;
  if (authReply && authReply.startsWith('-')) return authReply;
  const reply = replies[replies.length - 1];
  if (reply === null) throw new Error('connection closed before PING was answered');
  return reply;
}

/** true iff the Redis at `url` answers PING with +PONG within timeoutMs. */
async function pingUrl(url, timeoutMs = 1000) {
  try {
    return (await pingRaw(parseRedisUrl(url), timeoutMs)) === '+PONG';
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// binaries, ports, processes

function isExecutable(p) {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Absolute path of redis-server (PATH first, then the usual Debian locations) or null. */
function findRedisServerBinary() {
  const dirs = (process.env.PATH || '').split(path.delimiter).filter(Boolean);
  for (const extra of ['/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/local/sbin', '/bin', '/sbin']) {
    if (!dirs.includes(extra)) dirs.push(extra);
  }
  for (const d of dirs) {
    const p = path.join(d, 'redis-server');
    if (isExecutable(p)) return p;
  }
  return null;
}

/** A TCP port that was free on 127.0.0.1 a moment ago (listen on 0, read, close). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not get a free port'))));
    });
  });
}

function isAlive(pid) {
  if (!pid || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return e.code === 'EPERM';
  }
  // a zombie (dead, not yet reaped by its parent) still answers kill(pid, 0)
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
  } catch {}
  return true;
}

function cmdlineOf(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

function tailFile(file, lines = 15) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log written)';
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function sanitizeName(s) {
  return String(s).replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[.]+/, '_') || 'redis';
}

// ---------------------------------------------------------------------------
// cleanup of servers we own

/** @type {Map<number, { child: import('child_process').ChildProcess, dir: string, removeDir: boolean }>} */
const live = new Map();
let exitHookInstalled = false;

function killAllSync() {
  for (const [pid, entry] of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
    if (entry.removeDir) {
      try {
        fs.rmSync(entry.dir, { recursive: true, force: true });
      } catch {}
    }
  }
  live.clear();
}

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killAllSync);
}

/**
 * Remove data dirs left behind by runs whose owner process died without cleaning up
 * (SIGKILL, crash, OOM). Kills the orphaned redis-server if it is still running.
 */
function reapOrphans(baseDir = REDIS_BASE_DIR) {
  let entries = [];
  try {
    entries = fs.readdirSync(baseDir);
  } catch {
    return;
  }
  for (const name of entries) {
    const dir = path.join(baseDir, name);
    let owner;
    try {
      owner = JSON.parse(fs.readFileSync(path.join(dir, 'owner.json'), 'utf8'));
    } catch {
      continue; // not ours, or being created right now
    }
    if (isAlive(owner.ownerPid)) continue;
    if (owner.redisPid && isAlive(owner.redisPid) && cmdlineOf(owner.redisPid).includes('redis-server')) {
      try {
        process.kill(owner.redisPid, 'SIGKILL');
      } catch {}
    }
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {}
  }
}

// ---------------------------------------------------------------------------
// one private redis-server

class PrivateRedis {
  /**
   * @param {{ bin: string, port: number, dir: string, appendonly: boolean,
   *           appendfsync: string, detached: boolean, extraArgs: string[] }} o
   */
  constructor(o) {
    this.bin = o.bin;
    this.port = o.port;
    this.dir = o.dir;
    this.appendonly = o.appendonly;
    this.appendfsync = o.appendfsync;
    this.detached = o.detached;
    this.extraArgs = o.extraArgs;
    this.logFile = path.join(o.dir, 'redis.log');
    this.stdoutFile = path.join(o.dir, 'redis.stdout.log');
    this.url = `redis://127.0.0.1:${o.port}`;
    this.child = null;
    this.pid = 0;
    this.exited = null; // Promise resolved when the current child exits
  }

  args() {
    return [
      '--bind', '127.0.0.1',
      '--port', String(this.port),
      '--appendonly', this.appendonly ? 'yes' : 'no',
      '--appendfsync', this.appendfsync,
      '--save', '',
      '--maxmemory-policy', 'noeviction',
      '--dir', this.dir,
      '--logfile', this.logFile,
      '--daemonize', 'no',
      ...this.extraArgs,
    ];
  }

  /** Spawn redis-server and wait (up to timeoutMs) until PING answers +PONG. */
  async start(timeoutMs = 10000) {
    fs.mkdirSync(this.dir, { recursive: true });
    // Config errors go to stderr, not to the logfile: keep them next to it.
    const outFd = fs.openSync(this.stdoutFile, 'a');
    const child = spawn(this.bin, this.args(), {
      cwd: this.dir,
      stdio: ['ignore', outFd, outFd],
      // detached = own process group: a terminal Ctrl-C then reaches the app / jest
      // but not Redis, so the app can still shut down cleanly against it; we stop
      // Redis ourselves afterwards (and on exit).
      detached: this.detached,
    });
    fs.closeSync(outFd);
    this.child = child;
    let exitInfo = null;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        exitInfo = { code, signal };
        live.delete(child.pid);
        resolve(exitInfo);
      });
    });
    let spawnError = null;
    child.once('error', (e) => {
      spawnError = e;
    });
    await sleep(0);
    if (spawnError || !child.pid) {
      throw new Error(`could not start ${this.bin}: ${spawnError ? spawnError.message : 'no pid'}`);
    }
    this.pid = child.pid;
    installExitHook();
    live.set(child.pid, { child, dir: this.dir, removeDir: true });
    fs.writeFileSync(
      path.join(this.dir, 'owner.json'),
      JSON.stringify({ ownerPid: process.pid, redisPid: child.pid, port: this.port, startedAt: new Date().toISOString() }),
    );

    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    for (;;) {
      if (spawnError) throw new Error(`redis-server failed: ${spawnError.message}`);
      if (exitInfo) {
        const out = tailFile(this.stdoutFile);
        const err = new Error(
          `redis-server on port ${this.port} exited during startup (code ${exitInfo.code}, signal ${exitInfo.signal}). ` +
            `Log: ${this.logFile}\n${tailFile(this.logFile)}` +
            (out && out !== '(no log written)' ? `\nstdout/stderr (${this.stdoutFile}):\n${out}` : ''),
        );
        err.code = 'REDIS_EXITED';
        err.log = `${tailFile(this.logFile, 50)}\n${out}`;
        throw err;
      }
      try {
        last = await pingRaw({ host: '127.0.0.1', port: this.port }, 500);
        if (last === '+PONG') return this;
      } catch (e) {
        last = e.message;
      }
      if (Date.now() > deadline) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {}
        throw new Error(
          `redis-server on port ${this.port} did not answer PING within ${timeoutMs} ms (last: ${last}). ` +
            `Log: ${this.logFile}\n${tailFile(this.logFile)}`,
        );
      }
      await sleep(50);
    }
  }

  /** SIGKILL the server (no AOF flush beyond what appendfsync already wrote). Keeps the dir. */
  kill9() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {}
  }

  async waitExit(timeoutMs = 5000) {
    if (!this.exited) return true;
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    try {
      return (await Promise.race([this.exited, timeout])) !== null;
    } finally {
      clearTimeout(timer); // don't keep the event loop (Jest worker) alive
    }
  }

  /** Start again on the same port and dir (AOF is replayed); resolves once PING is +PONG. */
  async restart(timeoutMs = 10000) {
    this.kill9();
    await this.waitExit();
    // the port may linger for a moment after the kill: retry bind failures briefly
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await this.start(Math.max(1000, deadline - Date.now()));
      } catch (e) {
        if (e.code === 'REDIS_EXITED' && /Address already in use/i.test(e.log || '') && Date.now() < deadline) {
          await sleep(100);
          continue;
        }
        throw e;
      }
    }
  }

  /** SHUTDOWN NOSAVE (SIGKILL if it does not go away), then remove the data dir. */
  async stop() {
    const running = this.child && this.child.exitCode === null && this.child.signalCode === null;
    if (running) {
      try {
        await rawCommands({ host: '127.0.0.1', port: this.port }, [['SHUTDOWN', 'NOSAVE']], 2000);
      } catch {}
      if (!(await this.waitExit(3000))) {
        this.kill9();
        await this.waitExit(3000);
      }
    }
    live.delete(this.pid);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Start a private redis-server on a free loopback port with its data under
 * .keyflow/redis/<name>-<port>/. Retries with another port if the one picked was
 * grabbed in between.
 * @param {{ name: string, bin?: string, appendonly?: boolean, appendfsync?: string,
 *           detached?: boolean, extraArgs?: string[], timeoutMs?: number, baseDir?: string }} opts
 */
async function startRedisServer(opts) {
  const bin = opts.bin || findRedisServerBinary();
  if (!bin) throw new Error(missingRedisMessage());
  const baseDir = opts.baseDir || REDIS_BASE_DIR;
  reapOrphans(baseDir);
  let lastErr;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const srv = new PrivateRedis({
      bin,
      port,
      dir: path.join(baseDir, `${sanitizeName(opts.name)}-${port}`),
      appendonly: opts.appendonly !== false,
      appendfsync: opts.appendfsync || 'everysec',
      detached: opts.detached === true,
      extraArgs: opts.extraArgs || [],
    });
    try {
      return await srv.start(opts.timeoutMs || 10000);
    } catch (e) {
      lastErr = e;
      if (e.code === 'REDIS_EXITED' && /Address already in use/i.test(e.log || '')) {
        fs.rmSync(srv.dir, { recursive: true, force: true });
        continue;
      }
      throw e;
    }
  }
  throw lastErr;
}

function missingRedisMessage() {
  return (
    'redis-server was not found on PATH. Install it with:\n' +
    '    sudo apt-get install -y redis-server\n' +
    'or point the tooling at an existing Redis by setting REDIS_URL, e.g.\n' +
    '    REDIS_URL=redis://127.0.0.1:6379 npm test'
  );
}

module.exports = {
  ROOT,
  redactUrl,
  pingUrl,
  findRedisServerBinary,
  killAllSync,
  startRedisServer,
  missingRedisMessage,
};
