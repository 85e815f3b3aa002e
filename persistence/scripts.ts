import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis, Cluster, Result } from 'ioredis';

/**
 * The Lua scripts of persistence/lua, registered on a client with
 * `defineCommand`. ioredis runs them by EVALSHA, so Redis addresses a script by
 * its content: workers of different versions sharing one Redis never run each
 * other's scripts. On NOSCRIPT (a restarted Redis has an empty script cache)
 * ioredis falls back to EVAL.
 */
const SCRIPTS = {
  kfCommit: 'commit-6.lua',
  kfLoad: 'load-2.lua',
  kfLeaseAcquire: 'lease-acquire-2.lua',
  kfLeaseRenew: 'lease-renew-1.lua',
  kfLeaseRelease: 'lease-release-1.lua',
  kfMembership: 'membership-1.lua',
} as const;

type ScriptName = keyof typeof SCRIPTS;

export type RedisClient = Redis | Cluster;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    kfCommit(lease: string, dedup: string, outbox: string, active: string, waiting: string, wakeMarker: string, argv: (string | number | Buffer)[]): Result<(string | number)[], Context>;
    kfLoad(snapshot: string, journal: string, upTo: string | number, ignoreSnapshot: string): Result<(string | number)[], Context>;
    kfLeaseAcquire(lease: string, epoch: string, owner: string, ttlMs: number): Result<(string | number)[], Context>;
    kfLeaseRenew(lease: string, value: string, ttlMs: number): Result<number, Context>;
    kfLeaseRelease(lease: string, value: string): Result<number, Context>;
    kfMembership(workers: string, workerId: string, ttlMs: number): Result<string[], Context>;
  }
}

interface LoadedScript {
  name: string;
  numberOfKeys: number;
  lua: string;
}

let loaded: Map<ScriptName, LoadedScript> | undefined;

function loadScripts(): Map<ScriptName, LoadedScript> {
  if (loaded) return loaded;
  loaded = new Map();
  for (const [name, file] of Object.entries(SCRIPTS) as [ScriptName, string][]) {
    const lua = readFileSync(join(__dirname, 'lua', file), 'utf8');
    const keys = /-(\d+)\.lua$/.exec(file);
    if (!keys) throw new Error(`script file ${file} must name its key count: <name>-<keys>.lua`);
    loaded.set(name, { name, numberOfKeys: Number(keys[1]), lua });
  }
  return loaded;
}

const registered = new WeakSet<object>();

/** Register the scripts on a client (idempotent). */
export function registerScripts(client: RedisClient): void {
  if (registered.has(client)) return;
  for (const s of loadScripts().values()) {
    client.defineCommand(s.name, { numberOfKeys: s.numberOfKeys, lua: s.lua });
  }
  registered.add(client);
}
