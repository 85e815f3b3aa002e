import { CorruptRecordError } from './errors';
import type { PartitionKeys } from './keys';
import { registerScripts, type RedisClient } from './scripts';

/** Plain JSON data, as stored. */
export type JsonObject = { [k: string]: unknown };

/** One journal entry: the event as the machine saw it, at its sequence number. */
export interface JournalEntry {
  seq: number;
  id: string;
  ts: number;
  event: JsonObject;
}

/** A persisted snapshot: the machine's persisted state after event `seq`. */
export interface StoredSnapshot {
  seq: number;
  version: number;
  state: JsonObject;
}

/** What rehydration reads: the latest snapshot (if any) and the journal after it. */
export interface LoadedActor {
  snapshot: StoredSnapshot | undefined;
  /** Journal length = the actor's seq. */
  seq: number;
  /** Entries after the snapshot (or from seq 1), in order. */
  tail: JournalEntry[];
}

export function encodeEntry(entry: JournalEntry): string {
  return JSON.stringify(entry);
}

export function decodeEntry(raw: string, ref: string): JournalEntry {
  try {
    const e = JSON.parse(raw) as JournalEntry;
    if (typeof e.seq !== 'number' || typeof e.id !== 'string' || typeof e.event !== 'object') {
      throw new Error('missing seq, id or event');
    }
    return e;
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
    const [snapSeq, version, state, length] = reply;
    let snapshot: StoredSnapshot | undefined;
    if (Number(snapSeq) > 0) {
      try {
        snapshot = { seq: Number(snapSeq), version: Number(version), state: JSON.parse(String(state)) as JsonObject };
      } catch (err) {
        throw new CorruptRecordError(`snapshot of ${ref}`, err);
      }
    }
    const tail: JournalEntry[] = [];
    for (let i = 4; i < reply.length; i++) tail.push(decodeEntry(String(reply[i]), ref));
    return { snapshot, seq: Number(length), tail };
  }

  /** Journal entries `fromSeq..toSeq` (1-based, inclusive). */
  async range(keys: PartitionKeys, ref: string, fromSeq = 1, toSeq = -1): Promise<JournalEntry[]> {
    const raw = await this.client.lrange(keys.journal(ref), Math.max(fromSeq, 1) - 1, toSeq < 0 ? -1 : toSeq - 1);
    return raw.map((r) => decodeEntry(r, ref));
  }

  async length(keys: PartitionKeys, ref: string): Promise<number> {
    return this.client.llen(keys.journal(ref));
  }
}
