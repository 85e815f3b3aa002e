// Tests of the test tooling itself: the shared Redis from `npm test`, the
// namespace helpers (and the public deleteNamespace), a private redis-server surviving kill -9 via AOF, when
// the bootstrap reinstalls node_modules, and Jest's handling of the ESM-only
// uuid package.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { v7, validate, version } from 'uuid';
import { deleteNamespace, WORKER_NODE_FLAGS } from '../index';
import { depsPlan, REQUIRED_BINS } from '../scripts/lib/deps.cjs';
import { pingUrl } from '../scripts/lib/redis-server.cjs';
import {
  cleanupNamespace,
  redisUrl,
  startPrivateRedis,
  uniqueNamespace,
  type PrivateRedisHandle,
} from './helpers/redis';

describe('shared test Redis', () => {
  it('answers PING through ioredis at REDIS_URL', async () => {
    const client = new Redis(redisUrl());
    try {
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });
});

describe('uniqueNamespace', () => {
  it('gives distinct, valid names', () => {
    const names = Array.from({ length: 200 }, () => uniqueNamespace());
    names.push(uniqueNamespace('Actor Spec'), uniqueNamespace('9lives'), uniqueNamespace('mb'));
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(n).toMatch(/^[a-z][a-z0-9_-]*$/);
    expect(uniqueNamespace('mb').startsWith('mb-')).toBe(true);
  });
});

describe('cleanupNamespace / deleteNamespace', () => {
  let client: Redis;
  beforeAll(() => {
    client = new Redis(redisUrl());
  });
  afterAll(() => client.disconnect());

  it('removes the keys of its namespace only', async () => {
    const ns = uniqueNamespace('clean');
    const other = uniqueNamespace('keep');
    const mine = [`${ns}:a`, `${ns}:b:c`, `kf:{${ns}:p1}:journal`, `x{${ns}:}`];
    const theirs = [`${other}:a`, `kf:{${other}:p1}:journal`, `pre-${ns}:a`, `${ns}-x:a`];
    for (const k of [...mine, ...theirs]) await client.set(k, '1');

    expect(await cleanupNamespace(redisUrl(), ns)).toBe(mine.length);
    for (const k of mine) expect(await client.exists(k)).toBe(0);
    for (const k of theirs) expect(await client.exists(k)).toBe(1);

    expect(await cleanupNamespace(redisUrl(), other)).toBe(2);
    await client.del(`pre-${ns}:a`, `${ns}-x:a`);
  });

  it('deleteNamespace (public API; the bank example and the benches) deletes the partition and namespace keys of its namespace, not those of a namespace it prefixes', async () => {
    const ns = uniqueNamespace('del');
    const mine = [`{${ns}:0}:j:account:alice`, `{${ns}:15}:q:mailbox:wait`, `{${ns}}:meta`, `{${ns}}:workers`];
    const theirs = [`{${ns}0:0}:j:account:alice`, `{${ns}-x}:meta`, `{${ns}_y:3}:lease`];
    for (const k of [...mine, ...theirs]) await client.set(k, '1');

    await expect(deleteNamespace(redisUrl(), `${ns}*`)).rejects.toThrow(/not a keyflow namespace/);
    for (const k of mine) expect(await client.exists(k)).toBe(1);

    expect(await deleteNamespace(client, ns)).toBe(mine.length);
    for (const k of mine) expect(await client.exists(k)).toBe(0);
    for (const k of theirs) expect(await client.exists(k)).toBe(1);
    expect(await deleteNamespace(redisUrl(), `${ns}0`)).toBe(1);
    await client.del(...theirs);
  });
});

describe('startPrivateRedis', () => {
  let srv: PrivateRedisHandle | undefined;
  afterAll(async () => {
    await srv?.stop();
  });

  it('keeps an acknowledged write across kill -9 + restart (AOF, appendfsync always)', async () => {
    srv = await startPrivateRedis();
    expect(srv.dir).toContain(`test-private-${srv.port}`);
    const firstPid = srv.pid;

    let client = new Redis(srv.url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
    expect(await client.config('SET', 'appendfsync', 'always')).toBe('OK');
    await client.set('durable', 'yes');
    client.disconnect();

    srv.kill9();
    await srv.restart();
    expect(srv.pid).not.toBe(firstPid);

    client = new Redis(srv.url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
    try {
      expect(await client.get('durable')).toBe('yes');
    } finally {
      client.disconnect();
    }
  });

  it('stop() kills the server and removes its data dir', async () => {
    const s = await startPrivateRedis({ appendonly: false });
    expect(existsSync(s.dir)).toBe(true);
    await s.stop();
    expect(existsSync(s.dir)).toBe(false);
    // raw RESP PING (an ioredis client failing to connect keeps Jest alive for a while)
    expect(await pingUrl(s.url, 500)).toBe(false);
  });
});

describe('depsPlan (when npm test / npm start reinstall node_modules)', () => {
  let root: string;
  const pkg = { name: 'p', version: '1.0.0', scripts: { test: 'jest' }, dependencies: { a: '^1.0.0' }, devDependencies: { b: '^2.0.0' } };
  const lockPackages = {
    '': { name: 'p', version: '1.0.0', dependencies: { a: '^1.0.0' }, devDependencies: { b: '^2.0.0' } },
    'node_modules/a': { version: '1.2.0' },
    'node_modules/b': { version: '2.0.1', dev: true },
    'node_modules/@esbuild/darwin-arm64': { version: '0.25.0', optional: true },
  };
  const installed = { 'node_modules/a': { version: '1.2.0' }, 'node_modules/b': { version: '2.0.1', dev: true } };
  const write = (file: string, value: unknown) => {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), JSON.stringify(value, null, 2));
  };

  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), 'keyflow-deps-'));
    write('package.json', pkg);
    write('package-lock.json', { name: 'p', lockfileVersion: 3, packages: lockPackages });
    write('node_modules/.package-lock.json', { name: 'p', lockfileVersion: 3, packages: installed });
    for (const bin of REQUIRED_BINS) write(`node_modules/.bin/${bin}`, '');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('needs nothing when node_modules holds the lock (other platforms\' optional packages absent), even after a scripts edit', () => {
    expect(depsPlan(root)).toBeNull();
    write('package.json', { ...pkg, scripts: { ...pkg.scripts, bench: 'node bench.js' } });
    expect(depsPlan(root)).toBeNull();
  });

  it('asks for npm ci when node_modules is missing, behind the lock or lacks a tool', () => {
    write('package-lock.json', { name: 'p', lockfileVersion: 3, packages: { ...lockPackages, 'node_modules/a': { version: '1.3.0' } } });
    expect(depsPlan(root)).toEqual({ action: 'ci', reason: 'node_modules/a is 1.2.0, package-lock.json says 1.3.0' });
    write('package-lock.json', { name: 'p', lockfileVersion: 3, packages: { ...lockPackages, 'node_modules/c': { version: '1.0.0' } } });
    expect(depsPlan(root)).toEqual({ action: 'ci', reason: 'node_modules/c is not installed' });
    write('package-lock.json', { name: 'p', lockfileVersion: 3, packages: lockPackages });
    rmSync(path.join(root, 'node_modules/.bin/jest'));
    expect(depsPlan(root)).toEqual({ action: 'ci', reason: 'node_modules/.bin/jest is missing' });
    rmSync(path.join(root, 'node_modules'), { recursive: true });
    expect(depsPlan(root)).toEqual({ action: 'ci', reason: 'node_modules/.package-lock.json is missing' });
  });

  it('asks for npm install when the lock is missing or does not list package.json\'s dependencies', () => {
    write('package.json', { ...pkg, dependencies: { ...pkg.dependencies, c: '^1.0.0' } });
    expect(depsPlan(root)).toEqual({ action: 'install', reason: 'package.json dependencies differ from package-lock.json' });
    rmSync(path.join(root, 'package-lock.json'));
    expect(depsPlan(root)).toEqual({ action: 'install', reason: 'package-lock.json is missing' });
  });
});

describe('uuid (ESM-only) under Jest', () => {
  it('imports v7 and generates time-ordered ids', () => {
    const a = v7();
    const b = v7();
    expect(validate(a)).toBe(true);
    expect(version(a)).toBe(7);
    expect(a < b).toBe(true);
  });
});

describe('Node flags of worker processes', () => {
  it('npm run bench runs under WORKER_NODE_FLAGS, which V8 accepts', () => {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const passed = [...pkg.scripts.bench!.matchAll(/--node-option=(\S+)/g)].map((m) => m[1]);
    expect(passed).toEqual([...WORKER_NODE_FLAGS]);
    // A flag Node does not know would stop every worker at start.
    const out = execFileSync(process.execPath, [...WORKER_NODE_FLAGS, '-e', 'process.stdout.write(String(require("v8").getHeapStatistics().total_available_size > 0))'], { encoding: 'utf8' });
    expect(out).toBe('true');
  });
});

describe('scripts/run.mjs (npm run bench, npm start)', () => {
  // The bench changes the AOF settings of a Redis only when this tells it the Redis is its run's own.
  it('tells the child whether the Redis is one it started (KEYFLOW_REDIS_PRIVATE)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'keyflow-run-'));
    const entry = path.join(dir, 'print-env.mjs');
    writeFileSync(entry, "process.stdout.write(`${process.env.KEYFLOW_REDIS_PRIVATE ?? 'unset'} ${process.env.REDIS_URL ?? ''}`);\n");
    const run = (env: NodeJS.ProcessEnv) => execFileSync(process.execPath, [path.join(__dirname, '..', 'scripts', 'run.mjs'), entry], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const { REDIS_URL: _url, ...withoutUrl } = process.env;
      const [privateFlag, privateUrl] = run({ ...withoutUrl, KEYFLOW_REDIS_PRIVATE: 'left from outside' }).split(' ');
      expect(privateFlag).toBe('1');
      expect(privateUrl).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      expect(privateUrl).not.toBe(redisUrl());
      // A Redis given by REDIS_URL is someone else's, even when the variable comes in set.
      expect(run({ ...process.env, REDIS_URL: redisUrl(), KEYFLOW_REDIS_PRIVATE: '1' })).toBe(`unset ${redisUrl()}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
