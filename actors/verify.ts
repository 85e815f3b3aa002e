import { Cluster, type Redis } from 'ioredis';
import { partitionOf } from '../mailbox';
import {
  actorRef,
  CorruptRecordError,
  decodeKey,
  journalKeys,
  InvalidOptionError,
  PartitionKeys,
  toError,
  type JournalEntry,
  type JournalStore,
  type JsonObject,
  type RedisClient,
} from '../persistence';
import { RehydrationError, VersionMismatchError } from './errors';
import type { ExecutableAction, MachineRunner, ReplayedState } from './machine-runner';
import { intOption } from './validation';

/** Options of `system.verify(type, opts)`. */
export interface VerifyOptions {
  /** Verify only these keys instead of every key of the type found in the namespace. */
  keys?: string[];
  /** Keys verified at once. @default 8 */
  concurrency?: number;
  /** Journal entries read per round trip. @default 1000 */
  pageSize?: number;
  /** At most this many mismatches, errors and skipped keys are listed (the `totals` stay exact). @default 1000 */
  maxReported?: number;
  /** Called after each key verified, with the number of keys checked so far. */
  onProgress?: (checked: number) => void;
}

/** The state compared: the persisted XState snapshot and the pending durable timers. */
export interface VerifiedState {
  state: JsonObject;
  timers: JsonObject;
}

/** A key whose stored snapshot differs from the replay of its journal up to the snapshot's seq. */
export interface VerifyMismatch {
  key: string;
  /** Seq of the stored snapshot: the replay was compared after this many journal entries. */
  seq: number;
  /** Machine version the snapshot was written with (migrated before comparing when older). */
  version: number;
  stored: VerifiedState;
  replayed: VerifiedState;
  /** Paths that differ, e.g. `state.context.balance` (at most 20). */
  differences: string[];
}

/** A key that could not be verified: its snapshot has no migration path, the machine fails on its journal, a record is corrupt. */
export interface VerifyError {
  key: string;
  /** The journal entry being replayed when it failed (0: before the first, e.g. reading the snapshot). */
  seq: number;
  error: Error;
}

/** A key left out: its name cannot be turned back into the key, or (with `opts.keys`) it has no journal. */
export interface VerifySkipped {
  /** The key, or the encoded name found in Redis when the key cannot be recovered from it. */
  key: string;
  reason: string;
}

export interface VerifyReport {
  type: string;
  /** Keys whose journal was replayed to its end. */
  checked: number;
  /** Of those, the keys that had a snapshot to compare with. */
  compared: number;
  mismatched: VerifyMismatch[];
  errors: VerifyError[];
  skipped: VerifySkipped[];
  /** Stored snapshot versions: machine version -> keys. */
  versions: Record<number, number>;
  totals: { mismatched: number; errors: number; skipped: number };
}

export interface VerifyDeps {
  client: RedisClient;
  journals: JournalStore;
  namespace: string;
  partitions: number;
  runner: MachineRunner;
  /** Throws a typed error on an invalid key. */
  checkKey: (key: string) => void;
}

/** A key to verify: where its journal lives. */
interface Target {
  partition: number;
  ref: string;
  key: string;
}

type Outcome =
  | { kind: 'ok'; compared: boolean; version?: number }
  | { kind: 'mismatch'; mismatch: VerifyMismatch }
  | { kind: 'error'; error: VerifyError; version?: number }
  | { kind: 'skipped'; skipped: VerifySkipped };

/**
 * `system.verify(type)`: replay every key's journal with the current machine
 * and compare it, at the stored snapshot's seq, with the stored snapshot
 * (migrated first when it is of an older version). Reads only; streams the
 * keys (one SCAN per Redis master) and each journal up to the snapshot (pages
 * of `pageSize`; the tail after it in one read, as rehydration reads it), so
 * memory is bounded by `concurrency` keys' pages and tails and the reported lists.
 */
export async function verifyType(deps: VerifyDeps, opts: VerifyOptions = {}): Promise<VerifyReport> {
  if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('verify(type, opts)', 'an object', opts);
  const concurrency = intOption('verify opts.concurrency', opts.concurrency, 8, 1, 256);
  const pageSize = intOption('verify opts.pageSize', opts.pageSize, 1_000, 1, 100_000);
  const maxReported = intOption('verify opts.maxReported', opts.maxReported, 1_000, 0, 1_000_000);
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw new InvalidOptionError('verify opts.onProgress', 'a function', opts.onProgress);
  let explicit: Target[] | undefined;
  if (opts.keys !== undefined) {
    if (!Array.isArray(opts.keys)) throw new InvalidOptionError('verify opts.keys', 'an array of keys', opts.keys);
    for (const key of opts.keys) deps.checkKey(key);
    const type = deps.runner.def.type;
    explicit = [...new Set(opts.keys)].map((key) => ({ partition: partitionOf(type, key, deps.partitions), ref: actorRef(type, key), key }));
  }

  const report: VerifyReport = { type: deps.runner.def.type, checked: 0, compared: 0, mismatched: [], errors: [], skipped: [], versions: {}, totals: { mismatched: 0, errors: 0, skipped: 0 } };
  const keysOf = new Map<number, PartitionKeys>();
  const partitionKeys = (p: number) => keysOf.get(p) ?? keysOf.set(p, new PartitionKeys(deps.namespace, p)).get(p)!;
  const record = (o: Outcome) => {
    if (o.kind === 'skipped') {
      report.totals.skipped++;
      if (report.skipped.length < maxReported) report.skipped.push(o.skipped);
      return;
    }
    report.checked++;
    const version = o.kind === 'mismatch' ? o.mismatch.version : o.version;
    if (version !== undefined) report.versions[version] = (report.versions[version] ?? 0) + 1;
    if (o.kind === 'mismatch' || (o.kind === 'ok' && o.compared)) report.compared++;
    if (o.kind === 'mismatch') {
      report.totals.mismatched++;
      if (report.mismatched.length < maxReported) report.mismatched.push(o.mismatch);
    } else if (o.kind === 'error') {
      report.totals.errors++;
      if (report.errors.length < maxReported) report.errors.push(o.error);
    }
    opts.onProgress?.(report.checked);
  };
  const run = async (batch: (Target | VerifySkipped)[]) => {
    let next = 0;
    const lane = async () => {
      while (next < batch.length) {
        const t = batch[next++]!;
        record('ref' in t ? await verifyKey(deps, partitionKeys(t.partition), t, pageSize, explicit !== undefined) : { kind: 'skipped', skipped: t });
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, batch.length) }, lane));
  };

  if (explicit) {
    for (let i = 0; i < explicit.length; i += 1_000) await run(explicit.slice(i, i + 1_000));
  } else {
    for await (const batch of scanJournals(deps.client, deps.namespace, deps.runner.def.type)) await run(batch);
  }
  return report;
}

/**
 * The keys of one actor type that have a journal, in batches: one SCAN per
 * Redis master (each partition's keys live on one node of a cluster), names
 * `{<namespace>:<p>}:j:<type>:<encoded key>` (persistence/keys.ts). A key
 * whose name is a digest (over 200 encoded characters) cannot be turned back
 * into the key: it comes as a skipped entry. SCAN may return a name twice
 * (while Redis rehashes); a batch never holds one twice.
 */
async function* scanJournals(client: RedisClient, namespace: string, type: string): AsyncGenerator<(Target | VerifySkipped)[]> {
  const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client];
  const { pattern, parse } = journalKeys(namespace, type);
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [nextCursor, names] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
      cursor = nextCursor;
      const batch: (Target | VerifySkipped)[] = [];
      for (const n of new Set(names)) {
        const found = parse(n);
        if (!found) continue;
        const { partition, ref, encoded } = found;
        const key = decodeKey(encoded);
        batch.push(key === undefined ? { key: encoded, reason: 'the key is stored under a digest (over 200 encoded characters): verify it with opts.keys' } : { partition, ref, key });
      }
      if (batch.length > 0) yield batch;
    } while (cursor !== '0');
  }
}


/** Replay one key's journal and compare it with its snapshot. Never throws for the key's own faults. */
async function verifyKey(deps: VerifyDeps, keys: PartitionKeys, t: Target, pageSize: number, explicit: boolean): Promise<Outcome> {
  const { runner, journals } = deps;
  let seq = 0;
  let version: number | undefined;
  try {
    // Snapshot, journal length and the entries after the snapshot, read atomically (as rehydration reads them).
    const loaded = await journals.load(keys, t.ref);
    if (loaded.seq === 0) {
      return explicit ? { kind: 'skipped', skipped: { key: t.key, reason: 'no journal: never seen, or its state expired (ttlMs)' } } : { kind: 'ok', compared: false };
    }
    const snap = loaded.snapshot;
    version = snap?.version;
    let stored: VerifiedState | undefined;
    if (snap) {
      let restored;
      try {
        restored = runner.restore(snap.state, snap.version, t.key);
      } catch (err) {
        throw err instanceof VersionMismatchError ? err : new RehydrationError(runner.def.type, t.key, err);
      }
      stored = { state: runner.persist(restored), timers: snap.timers ?? {} };
    }

    const initial = runner.initial(t.key);
    let state: ReplayedState = { snapshot: initial.snapshot, timers: {} };
    let owed: ExecutableAction[] = initial.actions;
    const apply = (entries: JournalEntry[]) => {
      for (const entry of entries) {
        if (entry.seq !== seq + 1) throw new CorruptRecordError(`journal of ${t.ref}`, new Error(`entry ${seq + 1} has seq ${entry.seq}`));
        seq = entry.seq;
        try {
          state = runner.replayOne(state, entry, owed);
        } catch (err) {
          throw new RehydrationError(runner.def.type, t.key, err);
        }
        owed = [];
      }
    };
    let mismatch: VerifyMismatch | undefined;
    const upTo = snap?.seq ?? 0;
    for (let from = 1; from <= upTo; from += pageSize) {
      const page = await journals.range(keys, t.ref, from, Math.min(upTo, from + pageSize - 1));
      if (page.length === 0) throw new CorruptRecordError(`journal of ${t.ref}`, new Error(`it ends before the snapshot's seq ${upTo}`));
      apply(page);
    }
    if (stored && snap) {
      const replayed: VerifiedState = { state: runner.persist(state.snapshot), timers: JSON.parse(JSON.stringify(state.timers)) as JsonObject };
      const differences = diff(stored, replayed);
      if (differences.length > 0) mismatch = { key: t.key, seq: snap.seq, version: snap.version, stored, replayed, differences };
    }
    // Replay on to the end: a machine that fails on its own journal would fail to rehydrate the key.
    apply(loaded.tail);
    return mismatch ? { kind: 'mismatch', mismatch } : { kind: 'ok', compared: stored !== undefined, version };
  } catch (err) {
    return { kind: 'error', error: { key: t.key, seq, error: toError(err) }, version };
  }
}

/** Paths where two JSON values differ (object key order does not count), at most `max`. */
function diff(a: unknown, b: unknown, path = '', out: string[] = [], max = 20): string[] {
  if (out.length >= max) return out;
  if (a === b) return out;
  const bothObjects = typeof a === 'object' && typeof b === 'object' && a !== null && b !== null && Array.isArray(a) === Array.isArray(b);
  if (!bothObjects) {
    out.push(path || '(root)');
    return out;
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  for (const k of new Set([...ka, ...kb])) {
    const p = Array.isArray(a) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
    const va = (a as Record<string, unknown>)[k];
    const vb = (b as Record<string, unknown>)[k];
    if (va === undefined && vb === undefined) continue;
    diff(va, vb, p, out, max);
    if (out.length >= max) break;
  }
  return out;
}
