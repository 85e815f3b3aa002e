// Types for ./redis-server.cjs (hand-written; keep in sync).
import type { ChildProcess } from 'node:child_process';

export declare const ROOT: string;
export declare const REDIS_BASE_DIR: string;

export interface RawTarget {
  host?: string;
  port: number;
  tls?: boolean;
}
export interface UrlTarget extends RawTarget {
  host: string;
  auth: string[] | null;
}

export declare function encodeCommand(args: Array<string | number>): string;
/** First line of each reply ("+PONG", "-LOADING …"); null when the server closed first. */
export declare function rawCommands(
  target: RawTarget,
  commands: Array<Array<string | number>>,
  timeoutMs?: number,
): Promise<Array<string | null>>;
export declare function parseRedisUrl(url: string): UrlTarget;
export declare function redactUrl(url: string): string;
export declare function pingRaw(target: RawTarget & { auth?: string[] | null }, timeoutMs?: number): Promise<string>;
export declare function pingUrl(url: string, timeoutMs?: number): Promise<boolean>;
export declare function findRedisServerBinary(): string | null;
export declare function freePort(): Promise<number>;
export declare function isAlive(pid: number): boolean;
export declare function reapOrphans(baseDir?: string): void;
export declare function killAllSync(): void;
export declare function missingRedisMessage(): string;
export declare function runSync(cmd: string, args: string[], opts?: object): number;
export declare function sleep(ms: number): Promise<void>;

export declare class PrivateRedis {
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
  kill9(): void;
  waitExit(timeoutMs?: number): Promise<boolean>;
  restart(timeoutMs?: number): Promise<this>;
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
