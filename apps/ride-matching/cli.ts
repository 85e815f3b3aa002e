/**
 * Command lines of the ride-matching service (`npm start`) and of the
 * simulator alone (`npm run simulate`), with commander.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { c } from '../lib/colors';
import { ConfigError, resolveConfig, RIDE_DEFAULTS, type ServiceConfig } from './config';
import { Simulator, SIMULATOR_DEFAULTS, type SimulatorOptions } from './simulator';
import { startService, type RideService } from './service';
import type { PoolEvent } from './worker-pool';

const say = (line = '') => process.stdout.write(`${line}\n`);

function number(min: number, max: number, integer = true) {
  return (raw: string): number => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, received ${JSON.stringify(raw)}`);
    }
    return n;
  };
}

const ratio = number(0, 1, false);

function addSimulatorOptions(cmd: Command): Command {
  const d = SIMULATOR_DEFAULTS;
  return cmd
    .option('--drivers <n>', 'simulated drivers', number(0, 10_000), d.drivers)
    .option('--ride-rate <n>', 'ride requests per second', number(0, 1_000, false), d.rate)
    .option('--accept-min-ms <ms>', 'drivers answer an offer after at least this long', number(0, 600_000), d.acceptMinMs)
    .option('--accept-max-ms <ms>', '… and at most this long', number(0, 600_000), d.acceptMaxMs)
    .option('--decline-rate <r>', 'share of offers declined (0..1)', ratio, d.declineRate)
    .option('--ignore-rate <r>', 'share of offers left to time out (0..1)', ratio, d.ignoreRate)
    .option('--cancel-rate <r>', 'share of riders who cancel while waiting (0..1)', ratio, d.cancelRate)
    .option('--speed <km/s>', 'driving speed in km per second (time-lapse)', number(0.001, 100, false), d.speedKmPerS)
    .option('--tick-ms <ms>', 'location updates per driver this often', number(50, 60_000), d.tickMs)
    .option('--seed <n>', 'seed of the random choices', number(0, 2 ** 31 - 1), d.seed)
    .option('--prefix <s>', 'ids of simulated drivers and riders start with this', d.prefix);
}

interface SimulatorFlags {
  drivers: number;
  rideRate: number;
  acceptMinMs: number;
  acceptMaxMs: number;
  declineRate: number;
  ignoreRate: number;
  cancelRate: number;
  speed: number;
  tickMs: number;
  seed: number;
  prefix: string;
}

function simulatorOptions(f: SimulatorFlags, url: string, apiKey: string | undefined): Partial<SimulatorOptions> & { url: string } {
  if (f.acceptMaxMs < f.acceptMinMs) throw new ConfigError(`--accept-max-ms (${f.acceptMaxMs}) is below --accept-min-ms (${f.acceptMinMs})`);
  if (f.declineRate + f.ignoreRate > 1) throw new ConfigError(`--decline-rate + --ignore-rate is above 1 (${f.declineRate} + ${f.ignoreRate})`);
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$/.test(f.prefix)) throw new ConfigError(`--prefix: expected 1 to 41 letters, digits, "_" or "-", received ${JSON.stringify(f.prefix)}`);
  return {
    url,
    apiKey,
    drivers: f.drivers,
    rate: f.rideRate,
    acceptMinMs: f.acceptMinMs,
    acceptMaxMs: f.acceptMaxMs,
    declineRate: f.declineRate,
    ignoreRate: f.ignoreRate,
    cancelRate: f.cancelRate,
    speedKmPerS: f.speed,
    tickMs: f.tickMs,
    seed: f.seed,
    prefix: f.prefix,
  };
}

/** Ctrl-C / SIGTERM: resolve once to stop gracefully; a second signal exits at once. */
function onStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let stopping = false;
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.on(sig, () => {
        if (stopping) process.exit(sig === 'SIGINT' ? 130 : 143);
        stopping = true;
        resolve(sig);
      });
    }
  });
}

function poolLine(e: PoolEvent): string | undefined {
  switch (e.type) {
    case 'worker.killed':
      return c.red(`worker ${e.slot} (pid ${e.pid}) killed with SIGKILL`);
    case 'worker.exited':
      return e.restartInMs === null ? undefined : c.yellow(`worker ${e.slot} exited (${e.signal ?? `code ${e.code}`}); restarting in ${e.restartInMs} ms`);
    case 'worker.ready':
      return c.dim(`worker ${e.slot} up (pid ${e.pid})`);
    case 'worker.error':
      return c.yellow(`worker ${e.slot}: ${e.message}`);
    default:
      return undefined;
  }
}

interface ServiceFlags extends SimulatorFlags {
  host: string;
  port?: number;
  workers: number;
  partitions: number;
  namespace: string;
  leaseTtlMs: number;
  radiusKm?: number;
  offerTimeoutMs?: number;
  matchTimeoutMs?: number;
  matchRetryMs?: number;
  apiKey?: string;
  askTimeoutMs: number;
  rateLimit: number;
  bodyLimit: number;
  simulator: boolean;
  quiet: boolean;
}

/** `npm start`: the service, and the simulator against it. Resolves with the exit code. */
export async function runService(argv: string[]): Promise<number> {
  const program = addSimulatorOptions(
    new Command('npm start --')
      .description('keyflow ride matching: drivers and rides as persistent actors, matched live; serves the live page, the API and /docs')
      .addOption(new Option('--port <n>', 'HTTP port (0 = any free port); default 3000, or any free port when 3000 is taken').env('PORT').argParser(number(0, 65_535)))
      .addOption(new Option('--host <host>', 'HTTP interface').env('HOST').default('127.0.0.1'))
      .option('--workers <n>', 'worker processes', number(1, 32), 2)
      .option('--partitions <n>', 'partitions of the namespace (fixed for its life)', number(1, 1_024), 8)
      .option('--namespace <s>', 'keyflow namespace', 'rides')
      .option('--lease-ttl-ms <ms>', 'partition lease TTL: a killed worker is replaced after about this long', number(200, 60_000), 1_000)
      .addOption(new Option('--radius-km <km>', `match radius (default ${RIDE_DEFAULTS.radiusKm})`).env('MATCH_RADIUS_KM').argParser(number(0.1, 1_000, false)))
      .addOption(new Option('--offer-timeout-ms <ms>', `a driver holds an offer this long (default ${RIDE_DEFAULTS.offerTimeoutMs})`).env('OFFER_TIMEOUT_MS').argParser(number(100, 3_600_000)))
      .addOption(new Option('--match-timeout-ms <ms>', `a ride not matched this long after its request expires (default ${RIDE_DEFAULTS.matchTimeoutMs})`).env('MATCH_TIMEOUT_MS').argParser(number(100, 86_400_000)))
      .addOption(new Option('--match-retry-ms <ms>', `a search that found nobody is retried after this long (default ${RIDE_DEFAULTS.retryMs})`).env('MATCH_RETRY_MS').argParser(number(50, 3_600_000)))
      .addOption(new Option('--api-key <key>', 'writes need Authorization: Bearer <key>').env('API_KEY'))
      .option('--ask-timeout-ms <ms>', 'a write waits this long for its commit before answering 503', number(100, 120_000), 5_000)
      .option('--rate-limit <n>', 'requests per minute per client before 429', number(1, 10_000_000), 12_000)
      .option('--body-limit <bytes>', 'larger request bodies get 413', number(256, 1_048_576), 4_096)
      .option('--no-simulator', 'serve only; no simulated drivers and riders')
      .option('--quiet', 'do not log worker and lease changes', false),
  );
  program.exitOverride().showHelpAfterError('(--help lists the options)');
  let flags: ServiceFlags;
  try {
    program.parse(argv, { from: 'user' });
    flags = program.opts<ServiceFlags>();
  } catch (err) {
    const e = err as { exitCode?: number; code?: string };
    return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : (e.exitCode ?? 2);
  }

  let config: ServiceConfig;
  let simOptions: ReturnType<typeof simulatorOptions> | undefined;
  try {
    config = resolveConfig({
      host: flags.host,
      port: flags.port ?? 3000,
      workers: flags.workers,
      partitions: flags.partitions,
      namespace: flags.namespace,
      leaseTtlMs: flags.leaseTtlMs,
      apiKey: flags.apiKey,
      rateLimitMax: flags.rateLimit,
      bodyLimitBytes: flags.bodyLimit,
      askTimeoutMs: flags.askTimeoutMs,
      ride: {
        ...(flags.radiusKm !== undefined ? { radiusKm: flags.radiusKm } : {}),
        ...(flags.offerTimeoutMs !== undefined ? { offerTimeoutMs: flags.offerTimeoutMs } : {}),
        ...(flags.matchTimeoutMs !== undefined ? { matchTimeoutMs: flags.matchTimeoutMs } : {}),
        ...(flags.matchRetryMs !== undefined ? { retryMs: flags.matchRetryMs } : {}),
      },
    });
    if (flags.simulator) simOptions = simulatorOptions(flags, '', config.apiKey);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${c.red('error:')} ${err.message}\n`);
    return 2;
  }

  const stopped = onStopSignal();
  // Lease acquisitions come in bursts (a start, a takeover, a hand-over): one line per burst and worker.
  const acquired = new Map<number, string[]>();
  let burst: NodeJS.Timeout | undefined;
  const flushLeases = () => {
    for (const [slot, parts] of acquired) say(c.dim(`  partition${parts.length > 1 ? 's' : ''} ${parts.join(', ')} → worker ${slot}`));
    acquired.clear();
  };
  const hooks = {
    onPoolEvent: (e: PoolEvent) => {
      if (flags.quiet) return;
      if (e.type === 'lease.acquired') {
        acquired.set(e.slot, [...(acquired.get(e.slot) ?? []), `${e.partition} (epoch ${e.epoch})`]);
        clearTimeout(burst);
        burst = setTimeout(flushLeases, 200);
        return;
      }
      const line = poolLine(e);
      if (line) say(`  ${line}`);
    },
  };
  let service: RideService;
  try {
    service = await startService(config, hooks);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE' && flags.port === undefined) {
      say(c.yellow(`port ${config.port} is in use; taking any free port`));
      service = await startService({ ...config, port: 0 }, hooks);
    } else {
      process.stderr.write(`${c.red('error:')} ${e.code === 'EADDRINUSE' ? `port ${config.port} is in use: choose another with --port (0 = any free port)` : e.message}\n`);
      return 1;
    }
  }

  say();
  say(`${c.bold('keyflow ride matching')} — drivers and rides as persistent actors, matched live`);
  say();
  say(`  ${c.green('➜')} open ${c.bold(c.cyan(service.url))}  (the live map)`);
  say(`    API docs ${service.url}/docs · metrics ${service.url}/metrics · events ${service.url}/events`);
  say(
    c.dim(
      `    ${config.workers} worker processes on namespace "${config.namespace}" (${config.partitions} partitions, lease TTL ${config.leaseTtlMs} ms); ` +
        `radius ${config.ride.radiusKm} km, offer timeout ${config.ride.offerTimeoutMs} ms, match timeout ${config.ride.matchTimeoutMs} ms` +
        (config.apiKey ? '; writes need the API key' : ''),
    ),
  );
  let simulator: Simulator | undefined;
  try {
    await service.ready(30_000);
    say(c.dim(`    ready: every partition is held by a worker`));
    if (simOptions) {
      simulator = new Simulator({ ...simOptions, url: service.url, onLine: (line) => say(c.dim(`  ${line}`)) });
      await simulator.start();
      say(c.dim(`    simulator: ${simOptions.drivers} drivers, ${simOptions.rate} ride requests/s (--no-simulator to serve only)`));
    }
    say(c.dim('    Ctrl-C stops everything'));
    say();
  } catch (err) {
    process.stderr.write(`${c.red('error:')} ${(err as Error).message}\n`);
    await simulator?.stop();
    await service.close();
    return 1;
  }

  const sig = await stopped;
  say(c.yellow(`\n${sig}: stopping the simulator, the HTTP server, the dispatcher and the workers (they hand their partitions over)`));
  await simulator?.stop();
  await service.close();
  say(c.dim('  stopped'));
  return 0;
}

/** `npm run simulate`: the simulator alone, against a running service. */
export async function runSimulator(argv: string[]): Promise<number> {
  const program = addSimulatorOptions(
    new Command('npm run simulate --')
      .description('Simulated drivers and riders against a running ride-matching service (start one with `npm start -- --no-simulator`)')
      .addOption(new Option('--url <url>', 'the service').env('RIDE_MATCHING_URL').default('http://127.0.0.1:3000'))
      .addOption(new Option('--api-key <key>', 'the service’s API key').env('API_KEY'))
      .option('--duration <s>', 'stop after this many seconds (default: run until Ctrl-C)', number(1, 86_400)),
  );
  program.exitOverride().showHelpAfterError('(--help lists the options)');
  let flags: SimulatorFlags & { url: string; apiKey?: string; duration?: number };
  let options: ReturnType<typeof simulatorOptions>;
  try {
    program.parse(argv, { from: 'user' });
    flags = program.opts();
    options = simulatorOptions(flags, flags.url.replace(/\/+$/, ''), flags.apiKey);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${c.red('error:')} ${err.message}\n`);
      return 2;
    }
    const e = err as { exitCode?: number; code?: string };
    return e.code === 'commander.helpDisplayed' ? 0 : (e.exitCode ?? 2);
  }
  const health = await fetch(`${options.url}/healthz`).then((r) => r.ok, () => false);
  if (!health) {
    process.stderr.write(`${c.red('error:')} no ride-matching service answers at ${options.url} (GET /healthz). Start one with \`npm start -- --no-simulator\`, or pass --url.\n`);
    return 1;
  }
  const sim = new Simulator({ ...options, onLine: (line) => say(line) });
  say(`simulating ${options.drivers} drivers and ${options.rate} ride requests/s against ${options.url} — watch it at ${options.url}`);
  await sim.start();
  const stopped = onStopSignal();
  const timeout = flags.duration ? new Promise<'duration'>((r) => setTimeout(() => r('duration'), flags.duration! * 1000).unref()) : new Promise<never>(() => {});
  await Promise.race([stopped, timeout]);
  await sim.stop();
  const s = sim.stats;
  say(`done: requested ${s.requested}, matched ${s.matched}, completed ${s.completed}, expired ${s.expired}, cancelled ${s.cancelled}; 409s ${s.conflicts}, errors ${s.errors}${s.lastError ? ` (last: ${s.lastError})` : ''}`);
  return s.errors > 0 ? 1 : 0;
}
