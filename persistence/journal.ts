import { CorruptRecordError } from './errors';
import type { PartitionKeys } from './keys';
import { registerScripts, type RedisClient } from './scripts';

/** Plain JSON data, as stored. */
export type JsonObject = { [k: string]: unknown };

/**
 * One journal entry at its sequence number. `event` is the event as the
 * machine saw it, or as it was sent: its `id` and `ts`, when absent, are the
 * entry's (they are added back on reading).
 */
export interface JournalEntry {
  seq: number;
  id: string;
  ts: number;
  event: JsonObject;
  /** Set when the event is a durable timer firing: the timer's id (XState delay id). */
  timer?: string;
}

/** A persisted snapshot: the machine's persisted state after event `seq`. */
export interface StoredSnapshot {
  seq: number;
  version: number;
  state: JsonObject;
  /** Durable timers pending at `seq` (id -> timer), which replay alone cannot see before the snapshot. */
  timers?: JsonObject;
}

/** What rehydration reads: the latest snapshot (if any) and the journal after it. */
export interface LoadedActor {
  snapshot: StoredSnapshot | undefined;
  /** Journal length = the actor's seq. */
  seq: number;
  /** Entries after the snapshot (or from seq 1), in order. */
  tail: JournalEntry[];
}

/**
 * Stored form of an entry, kept small (rehydration parses every entry of a
 * tail): `{ s: seq, i: id, t: ts, e: event }`, where the event's `id` and `ts`
 * are left out when they equal the entry's (they are put back on reading).
 */
interface StoredEntry {
  s: number;
  i: string;
  t: number;
  e: JsonObject;
  k?: string;
}

/**
 * The stored form of an entry. `sentJson`: the event's JSON text as sent, when
 * the caller has it (the event object may have been completed with the entry's
 * id and ts since): stored as is.
 */
export function encodeEntry(entry: JournalEntry, sentJson?: string): string {
  const ev = entry.event;
  if (sentJson !== undefined || (ev.id === undefined && ev.ts === undefined)) {
    // The common case (the event as sent, without its own id/ts): no copy.
    const k = entry.timer !== undefined ? `,"k":${JSON.stringify(entry.timer)}` : '';
    return `{"s":${entry.seq},"i":${JSON.stringify(entry.id)},"t":${entry.ts},"e":${sentJson ?? JSON.stringify(ev)}${k}}`;
  }
  const { id, ts, ...rest } = ev;
  const e: JsonObject = { ...rest };
  if (id !== entry.id) e.id = id;
  if (ts !== entry.ts) e.ts = ts;
  const stored: StoredEntry = { s: entry.seq, i: entry.id, t: entry.ts, e };
  if (entry.timer !== undefined) stored.k = entry.timer;
  return JSON.stringify(stored);
}

function fromStored(raw: StoredEntry): JournalEntry {
  if (typeof raw.s !== 'number' || typeof raw.i !== 'string' || typeof raw.t !== 'number' || typeof raw.e !== 'object' || raw.e === null) {
    throw new Error('missing s, i, t or e');
  }
  const entry: JournalEntry = { seq: raw.s, id: raw.i, ts: raw.t, event: { ...raw.e, id: raw.e.id ?? raw.i, ts: raw.e.ts ?? raw.t } };
  if (raw.k !== undefined) entry.timer = raw.k;
  return entry;
}

export function decodeEntry(raw: string, ref: string): JournalEntry {
  try {
    return fromStored(JSON.parse(raw) as StoredEntry);
  } catch (err) {
    throw new CorruptRecordError(`journal entry of ${ref}`, err);
  }
}

/** Decode entries joined with "," by the load script. */
function decodeJoined(joined: string, ref: string): JournalEntry[] {
  if (joined.length === 0) return [];
  try {
    return (JSON.parse(`[${joined}]`) as StoredEntry[]).map(fromStored);
  } catch (err) {
    throw new CorruptRecordError(`journal of ${ref}`, err);
  }
}

/** Decode many entries with one JSON.parse (a long tail is parsed faster as one array). */
export function decodeEntries(raw: string[], ref: string): JournalEntry[] {
  if (raw.length === 0) return [];
  let parsed: StoredEntry[];
  try {
    parsed = JSON.parse(`[${raw.join(',')}]`) as StoredEntry[];
  } catch {
    parsed = [];
  }
  // A corrupt entry (or one that only parses joined to its neighbours): decode one by one, naming it.
  if (parsed.length !== raw.length) return raw.map((r) => decodeEntry(r, ref));
  try {
    return parsed.map(fromStored);
  } catch (err) {
    throw new CorruptRecordError(`journal entry of ${ref}`, err);
  }
}

/** Journals and snapshots of actors. */
export class JournalStore {
  constructor(private readonly client: RedisClient) {
    registerScripts(client);
  }

  /**
   * Snapshot + journal tail, read atomically. `upToSeq` limits the read (time
   * travel); `fromScratch` ignores the snapshot and returns the journal from 1.
   */
  async load(keys: PartitionKeys, ref: string, opts: { upToSeq?: number; fromScratch?: boolean } = {}): Promise<LoadedActor> {
    const reply = await this.client.kfLoad(keys.snapshot(ref), keys.journal(ref), opts.upToSeq ?? 0, opts.fromScratch ? '1' : '0');
    const [snapSeq, version, state, length, , timers] = reply;
    let snapshot: StoredSnapshot | undefined;
    if (Number(snapSeq) > 0) {
      try {
        snapshot = { seq: Number(snapSeq), version: Number(version), state: JSON.parse(String(state)) as JsonObject };
        if (timers) snapshot.timers = JSON.parse(String(timers)) as JsonObject;
      } catch (err) {
        throw new CorruptRecordError(`snapshot of ${ref}`, err);
      }
    }
    const tail = decodeJoined(String(reply[4] ?? ''), ref);
    return { snapshot, seq: Number(length), tail };
  }

  /** Journal entries `fromSeq..toSeq` (1-based, inclusive). */
  async range(keys: PartitionKeys, ref: string, fromSeq = 1, toSeq = -1): Promise<JournalEntry[]> {
    const raw = await this.client.lrange(keys.journal(ref), Math.max(fromSeq, 1) - 1, toSeq < 0 ? -1 : toSeq - 1);
    return decodeEntries(raw, ref);
  }

  async length(keys: PartitionKeys, ref: string): Promise<number> {
    return this.client.llen(keys.journal(ref));
  }
}
