// Tests of the test tooling itself: the shared Redis from `npm test`, the
// namespace helpers, a private redis-server surviving kill -9 via AOF, and
// Jest's handling of the ESM-only uuid package.
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { v7, validate, version } from 'uuid';
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

describe('cleanupNamespace', () => {
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

describe('uuid (ESM-only) under Jest', () => {
  it('imports v7 and generates time-ordered ids', () => {
    const a = v7();
    const b = v7();
    expect(validate(a)).toBe(true);
    expect(version(a)).toBe(7);
    expect(a < b).toBe(true);
  });
});
