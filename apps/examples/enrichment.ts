/**
 * Enrichment with a stream-table join: each machine of a plant is a keyed
 * actor that holds its latest status (the table side, `status.updated`) and
 * enriches its sensor readings (the stream side, `reading`) with the status
 * that was valid at the reading's event time. Readings that arrive before
 * any status are held, and given up (emitted unenriched) after HOLD_MS.
 *
 *   node scripts/run.mjs apps/examples/enrichment.ts            (a private Redis)
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx apps/examples/enrichment.ts [--namespace NS] [--keep]
 *
 * Prints the enriched outputs as `system.outputs()` yields them. docs/joins.md explains the join.
 */
import { createActorSystem, defineActor, streamTableJoin, type ActorSystem, type PositionedOutput, deleteNamespace } from '../../index';

/** A reading with no status is held this long (event time, ms) before it goes out unenriched. */
export const HOLD_MS = 1_500;

type MachineStatus = 'running' | 'maintenance' | 'stopped';

/** Table side: the machine's status changed. */
export interface StatusUpdated {
  type: 'status.updated';
  status: MachineStatus;
  line: string;
  ts: number;
}

/** Stream side: one sensor reading of the machine. */
export interface Reading {
  type: 'reading';
  sensor: string;
  value: number;
  ts: number;
}

/** The output for every reading: enriched with the machine's status at the reading's time, or not (`status: null`). */
export interface EnrichedReading {
  type: 'reading.enriched' | 'reading.unenriched';
  sensor: string;
  value: number;
  ts: number;
  status: MachineStatus | null;
  line: string | null;
  /** Event time of the status update joined. */
  statusSince: number | null;
  /** Why a reading went out unenriched. */
  reason?: 'missing' | 'expired';
}

export const plantMachine = defineActor({
  type: 'machine',
  machine: streamTableJoin<Reading, StatusUpdated, { status: MachineStatus; line: string }, EnrichedReading>({
    table: { event: 'status.updated', select: (e) => ({ status: e.status, line: e.line }), delete: 'machine.decommissioned' },
    stream: { event: 'reading' },
    versioning: 'event-time', // a late reading joins the status of its own time
    onMissing: 'hold',
    hold: { maxEvents: 1_000, maxMs: HOLD_MS, onExpire: 'emit-unenriched' },
    enrich: (r, s, meta) => ({
      type: s ? 'reading.enriched' : 'reading.unenriched',
      sensor: r.sensor,
      value: r.value,
      ts: r.ts,
      status: s?.status ?? null,
      line: s?.line ?? null,
      statusSince: meta.tableTs ?? null,
      ...(s ? {} : { reason: meta.reason as 'missing' | 'expired' }),
    }),
  }),
  snapshotEvery: 50,
});

/** The scenario, in send order, with event times relative to T0. */
export const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const at = (ms: number) => T0 + ms;
export const SCENARIO: { key: string; event: StatusUpdated | Reading | { type: 'machine.decommissioned'; ts: number } }[] = [
  // m1: status, then readings; a reading arriving late joins the status of its own event time.
  { key: 'm1', event: { type: 'status.updated', status: 'running', line: 'A', ts: at(0) } },
  { key: 'm1', event: { type: 'reading', sensor: 'temp', value: 71, ts: at(1_000) } },
  { key: 'm1', event: { type: 'status.updated', status: 'maintenance', line: 'A', ts: at(2_000) } },
  { key: 'm1', event: { type: 'reading', sensor: 'temp', value: 64, ts: at(3_000) } },
  { key: 'm1', event: { type: 'reading', sensor: 'temp', value: 70, ts: at(1_500) } },
  // m2: readings before any status are held; the status releases the one it covers (ts 500 >= 100);
  // the one from before that status (ts 50) has no status of its time and goes out unenriched after HOLD_MS.
  { key: 'm2', event: { type: 'reading', sensor: 'vibration', value: 0.5, ts: at(500) } },
  { key: 'm2', event: { type: 'reading', sensor: 'vibration', value: 0.4, ts: at(50) } },
  { key: 'm2', event: { type: 'status.updated', status: 'running', line: 'B', ts: at(100) } },
  // m3: no status ever: held, then unenriched after HOLD_MS.
  { key: 'm3', event: { type: 'reading', sensor: 'temp', value: 12, ts: at(700) } },
  // m4: decommissioned (a tombstone): a later reading has no status.
  { key: 'm4', event: { type: 'status.updated', status: 'stopped', line: 'C', ts: at(0) } },
  { key: 'm4', event: { type: 'machine.decommissioned', ts: at(4_000) } },
  { key: 'm4', event: { type: 'reading', sensor: 'temp', value: 20, ts: at(3_000) } },
  { key: 'm4', event: { type: 'reading', sensor: 'temp', value: 21, ts: at(5_000) } },
];
/** Every reading of the scenario gives exactly one output. */
export const EXPECTED_OUTPUTS = SCENARIO.filter((s) => s.event.type === 'reading').length;

export interface EnrichmentExampleOptions {
  redisUrl: string;
  /** @default `enrichment-demo-<random>` */
  namespace?: string;
  /** Keep the namespace's data in Redis at the end. @default false */
  keep?: boolean;
  /** Where lines go. @default stdout */
  print?: (line: string) => void;
  /** Give up waiting for the outputs after this long (ms). @default 20000 */
  timeoutMs?: number;
}

/** Run the scenario on a fresh namespace; resolves the outputs, in the order `outputs()` yielded them. */
export async function runEnrichmentExample(opts: EnrichmentExampleOptions): Promise<PositionedOutput[]> {
  const print = opts.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const namespace = opts.namespace ?? `enrichment-demo-${Math.random().toString(36).slice(2, 8)}`;
  const system = await createActorSystem({ redis: opts.redisUrl, namespace, partitions: 4, actors: [plantMachine] });
  try {
    print(`namespace ${namespace}: ${SCENARIO.length} events for ${new Set(SCENARIO.map((s) => s.key)).size} machines (readings held up to ${HOLD_MS} ms)`);
    for (const { key, event } of SCENARIO) {
      const { ts, ...body } = event;
      await system.send('machine', key, body, { ts });
    }
    const outputs = await readOutputs(system, EXPECTED_OUTPUTS, opts.timeoutMs ?? 20_000);
    for (const o of outputs) {
      const e = o.event as unknown as EnrichedReading;
      const status = e.status ? `${e.status} (line ${e.line}, since +${e.statusSince! - T0} ms)` : `no status (${e.reason})`;
      print(`${o.key.padEnd(3)} ${e.sensor.padEnd(9)} ${String(e.value).padStart(4)} at +${String(e.ts - T0).padStart(4)} ms -> ${status}`);
    }
    for (const key of ['m1', 'm2', 'm3', 'm4']) {
      const state = await system.get('machine', key);
      print(`${key}: ${JSON.stringify((state?.context as { stats?: unknown } | undefined)?.stats)}`);
    }
    return outputs;
  } finally {
    await system.close();
    if (!opts.keep) await deleteNamespace(opts.redisUrl, namespace);
  }
}

async function readOutputs(system: ActorSystem, count: number, timeoutMs: number): Promise<PositionedOutput[]> {
  const out: PositionedOutput[] = [];
  const it = system.outputs({ from: 'start' })[Symbol.asyncIterator]();
  const timer = setTimeout(() => void it.return?.(), timeoutMs);
  try {
    while (out.length < count) {
      const next = await it.next();
      if (next.done) throw new Error(`only ${out.length} of ${count} outputs within ${timeoutMs} ms`);
      out.push(next.value);
    }
  } finally {
    clearTimeout(timer);
    await it.return?.();
  }
  return out;
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const ns = argv.indexOf('--namespace');
  runEnrichmentExample({ redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379', namespace: ns >= 0 ? argv[ns + 1] : undefined, keep: argv.includes('--keep') }).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
