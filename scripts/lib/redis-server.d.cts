// Types for ./redis-server.cjs (hand-written; keep in sync).
import type { ChildProcess } from 'node:child_process';

export declare const ROOT: string;

/** The URL with its password replaced by `***`. */
export declare function redactUrl(url: string): string;
/** true iff the Redis at `url` (redis:// or rediss://, AUTH from the URL) answers PING with +PONG within timeoutMs. */
export declare function pingUrl(url: string, timeoutMs?: number): Promise<boolean>;
/** Absolute path of redis-server (PATH first, then the usual Debian locations) or null. */
export declare function findRedisServerBinary(): string | null;
/** SIGKILL every redis-server this process started and remove their data dirs (also runs on exit). */
export declare function killAllSync(): void;
/** How to install redis-server or point the tooling at a Redis. */
export declare function missingRedisMessage(): string;

/** One private redis-server (what startRedisServer resolves). */
export interface PrivateRedis {
  readonly bin: string;
  readonly port: number;
  readonly dir: string;
  readonly logFile: string;
  /** redis-server stdout/stderr (config errors land here) */
  readonly stdoutFile: string;
  readonly url: string;
  child: ChildProcess | null;
  pid: number;
  start(timeoutMs?: number): Promise<this>;
  /** SIGKILL the server; the data dir stays for restart(). */
  kill9(): void;
  waitExit(timeoutMs?: number): Promise<boolean>;
  /** Start again on the same port and dir (AOF is replayed); resolves once PING answers +PONG. */
  restart(timeoutMs?: number): Promise<this>;
  /** SHUTDOWN NOSAVE (SIGKILL if it does not go away), then remove the data dir. */
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /** data dir is .keyflow/redis/<name>-<port>/ */
  name: string;
  bin?: string;
  appendonly?: boolean;
  appendfsync?: 'always' | 'everysec' | 'no';
  detached?: boolean;
  extraArgs?: string[];
  timeoutMs?: number;
  baseDir?: string;
}
export declare function startRedisServer(opts: StartRedisOptions): Promise<PrivateRedis>;
