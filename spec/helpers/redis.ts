// Test helpers for specs that need Redis.
//
// The shared Redis comes from `npm test` (scripts/test.mjs sets REDIS_URL to a
// private redis-server). For fault injection (kill -9, restart with AOF replay)
// a spec can start its own extra server with startPrivateRedis(). The process
// logic is shared with the bootstrap scripts: scripts/lib/redis-server.cjs.
import { Redis } from 'ioredis';
import { unlinkMatching } from '../../persistence';
import { startRedisServer } from '../../scripts/lib/redis-server.cjs';

/** URL of the test Redis; only set when running through `npm test`. */
export function redisUrl(): string {
  const url = process.env.REDIS_URL;
  if (!url) {
    throw new Error(
      'REDIS_URL is not set. Run the tests through `npm test` (it starts a private redis-server ' +
        'and sets REDIS_URL), e.g. `npm test -- spec/tooling.spec.ts`, or export REDIS_URL yourself.',
    );
  }
  return url;
}

let nsCounter = 0;

/**
 * A fresh key namespace, unique per call and across parallel Jest workers:
 * matches /^[a-z][a-z0-9_-]*$/, e.g. "t-12345-3-k9x2ab".
 */
export function uniqueNamespace(prefix = 't'): string {
  let p = prefix.toLowerCase().replace(/[^a-z0-9_-]+/g, '-');
  if (!/^[a-z]/.test(p)) p = `t${p}`;
  nsCounter += 1;
  const rand = Math.random().toString(36).slice(2, 8).padEnd(6, '0');
  return `${p}-${process.pid}-${nsCounter}-${rand}`;
}

/** Glob-escape for SCAN MATCH patterns. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/**
 * Delete every key of namespace `ns`: names containing `{ns:` (hash-tagged keys)
 * or starting with `ns:`. Uses SCAN, so it is safe on a shared Redis.
 * Returns the number of keys deleted.
 */
export async function cleanupNamespace(url: string, ns: string): Promise<number> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  let deleted = 0;
  try {
    for (const match of [`*{${globEscape(ns)}:*`, `*{${globEscape(ns)}}*`, `${globEscape(ns)}:*`]) deleted += await unlinkMatching(client, match);
  } finally {
    client.disconnect();
  }
  return deleted;
}

export interface PrivateRedisHandle {
  url: string;
  port: number;
  /** pid of the current redis-server process (changes after restart()) */
  readonly pid: number;
  /** data dir (.keyflow/redis/test-private-<port>) and its log file */
  dir: string;
  logFile: string;
  /** SIGKILL the server; the data dir stays for restart(). */
  kill9(): void;
  /** Start again on the same port and dir (AOF replay); resolves once PING answers +PONG. */
  restart(): Promise<void>;
  /** Kill the server and remove its data dir. */
  stop(): Promise<void>;
}

/**
 * Start an extra private redis-server (AOF on by default, appendfsync everysec)
 * on a free loopback port, data in .keyflow/redis/test-private-<port>/.
 * Always stop() it (afterAll); it is also killed if the Jest worker exits.
 */
export async function startPrivateRedis(opts: { appendonly?: boolean } = {}): Promise<PrivateRedisHandle> {
  const srv = await startRedisServer({ name: 'test-private', appendonly: opts.appendonly ?? true });
  return {
    url: srv.url,
    port: srv.port,
    get pid() {
      return srv.pid;
    },
    dir: srv.dir,
    logFile: srv.logFile,
    kill9: () => srv.kill9(),
    restart: async () => {
      await srv.restart();
    },
    stop: () => srv.stop(),
  };
}
