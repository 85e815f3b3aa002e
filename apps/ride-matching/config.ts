import type { RideSettings } from './ride-machine';
import { NAMESPACE_PATTERN } from '../../index';

/** Everything the service is configured with; `resolveConfig` fills the defaults from the environment. */
export interface ServiceConfig {
  redisUrl: string;
  /** keyflow namespace of the actors and the projections. @default 'rides' */
  namespace: string;
  /** Partitions of the namespace (fixed for its life). @default 8 */
  partitions: number;
  /** Worker processes. @default 2 */
  workers: number;
  /** Partition lease TTL: a killed worker's partitions move after about this long. @default 1000 */
  leaseTtlMs: number;
  /** Delay before a worker that exited is started again. @default 300 */
  workerRestartDelayMs: number;
  /** @default '127.0.0.1' (env HOST) */
  host: string;
  /** 0 = any free port. @default 3000 (env PORT) */
  port: number;
  /** When set, every write needs `Authorization: Bearer <apiKey>`. (env API_KEY) */
  apiKey: string | undefined;
  /** Larger request bodies get 413. @default 4096 */
  bodyLimitBytes: number;
  /** Requests per client (IP) per window before 429. @default 12000 */
  rateLimitMax: number;
  /** @default 60000 */
  rateLimitWindowMs: number;
  /** How long a write waits for its commit before answering 503. @default 5000 */
  askTimeoutMs: number;
  /** Matching settings, carried by every ride request. */
  ride: RideSettings;
}

/** Defaults of the ride settings: env MATCH_RADIUS_KM, OFFER_TIMEOUT_MS, MATCH_TIMEOUT_MS, MATCH_RETRY_MS. */
export const RIDE_DEFAULTS: RideSettings = { radiusKm: 3, offerTimeoutMs: 8_000, matchTimeoutMs: 30_000, retryMs: 2_000 };

export class ConfigError extends Error {}

function num(env: NodeJS.ProcessEnv, name: string, dflt: number, min: number, max: number, integer = true): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new ConfigError(`${name}: expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, received ${JSON.stringify(raw)}`);
  }
  return n;
}

/** The configuration from the environment, then `overrides` (command-line flags) on top, validated. */
export function resolveConfig(overrides: Partial<Omit<ServiceConfig, 'ride'>> & { ride?: Partial<RideSettings> } = {}, env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const ride: RideSettings = {
    radiusKm: num(env, 'MATCH_RADIUS_KM', RIDE_DEFAULTS.radiusKm, 0.1, 1_000, false),
    offerTimeoutMs: num(env, 'OFFER_TIMEOUT_MS', RIDE_DEFAULTS.offerTimeoutMs, 100, 3_600_000),
    matchTimeoutMs: num(env, 'MATCH_TIMEOUT_MS', RIDE_DEFAULTS.matchTimeoutMs, 100, 86_400_000),
    retryMs: num(env, 'MATCH_RETRY_MS', RIDE_DEFAULTS.retryMs, 50, 3_600_000),
    ...overrides.ride,
  };
  const config: ServiceConfig = {
    redisUrl: env.REDIS_URL || 'redis://127.0.0.1:6379',
    namespace: 'rides',
    partitions: 8,
    workers: 2,
    leaseTtlMs: 1_000,
    workerRestartDelayMs: 300,
    host: env.HOST || '127.0.0.1',
    port: num(env, 'PORT', 3000, 0, 65_535),
    apiKey: env.API_KEY || undefined,
    bodyLimitBytes: 4_096,
    rateLimitMax: 12_000,
    rateLimitWindowMs: 60_000,
    askTimeoutMs: 5_000,
    ...overrides,
    ride,
  };
  const check = (ok: boolean, what: string, expected: string, got: unknown) => {
    if (!ok) throw new ConfigError(`${what}: expected ${expected}, received ${JSON.stringify(got)}`);
  };
  const int = (v: number, lo: number, hi: number) => Number.isInteger(v) && v >= lo && v <= hi;
  check(NAMESPACE_PATTERN.test(config.namespace), 'namespace', '[a-z][a-z0-9_-]* (at most 64 characters)', config.namespace);
  check(int(config.partitions, 1, 1_024), 'partitions', 'an integer from 1 to 1024', config.partitions);
  check(int(config.workers, 1, 32), 'workers', 'an integer from 1 to 32', config.workers);
  check(int(config.leaseTtlMs, 200, 60_000), 'leaseTtlMs', 'an integer from 200 to 60000', config.leaseTtlMs);
  check(int(config.port, 0, 65_535), 'port', 'an integer from 0 to 65535', config.port);
  check(int(config.bodyLimitBytes, 256, 1_048_576), 'bodyLimitBytes', 'an integer from 256 to 1048576', config.bodyLimitBytes);
  check(int(config.rateLimitMax, 1, 10_000_000), 'rateLimitMax', 'an integer from 1 to 10000000', config.rateLimitMax);
  check(int(config.askTimeoutMs, 100, 120_000), 'askTimeoutMs', 'an integer from 100 to 120000', config.askTimeoutMs);
  check(ride.radiusKm > 0 && ride.radiusKm <= 1_000, 'ride.radiusKm', 'a number of km from 0 (excluded) to 1000', ride.radiusKm);
  check(int(ride.offerTimeoutMs, 100, 3_600_000), 'ride.offerTimeoutMs', 'an integer from 100 to 3600000', ride.offerTimeoutMs);
  check(int(ride.matchTimeoutMs, 100, 86_400_000), 'ride.matchTimeoutMs', 'an integer from 100 to 86400000', ride.matchTimeoutMs);
  check(int(ride.retryMs, 50, 3_600_000), 'ride.retryMs', 'an integer from 50 to 3600000', ride.retryMs);
  return config;
}
