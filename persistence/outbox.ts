import { Cluster } from 'ioredis';
import type { PartitionKeys } from './keys';
import type { RedisClient } from './scripts';
import type { OutboxKind } from './commit';

export interface OutboxRecord {
  /** Stream entry id: the record's position in its partition's outbox. */
  position: string;
  /** 'outs': the outputs of one commit, `body` their JSON array text; 'out': one output (older records). */
  kind: OutboxKind | 'outs';
  body: string;
}

/**
 * Stream entries as records: field `outs` (a commit's outputs, as the outputs
 * stream writes them now), or `body` with `kind` (none: one output, as older
 * records of the outputs stream are; mail records say their kind).
 */
function toRecords(entries: [string, string[]][]): OutboxRecord[] {
  return entries.map(([position, fields]) => {
    const rec: OutboxRecord = { position, kind: 'out', body: '' };
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'outs') {
        rec.kind = 'outs';
        rec.body = fields[i + 1]!;
      } else if (fields[i] === 'kind') rec.kind = fields[i + 1] as OutboxKind;
      else if (fields[i] === 'body') rec.body = fields[i + 1]!;
    }
    return rec;
  });
}

/**
 * Where a reader of a partition's outputs is: a stream id (everything up to
 * that record read), or `<id>/<k>` (the first k outputs of record <id> read,
 * not all of them: a commit's outputs are one record).
 */
export const POSITION_ELEMENT = /^\d+(-\d+)?(\/[1-9]\d*)?$/;

/** The record id of a position element, and how many of its outputs were read (undefined: all). */
function splitElement(element: string): [id: string, read: number | undefined] {
  const slash = element.indexOf('/');
  return slash < 0 ? [element, undefined] : [element.slice(0, slash), Number(element.slice(slash + 1))];
}

/** A stream id ("ms-seq", or "ms") as its two numbers (a seq can pass 2^53). */
function streamId(id: string): [ms: bigint, seq: bigint] {
  const [ms = 0n, seq = 0n] = id.split('-').map(BigInt);
  return [ms, seq];
}

/** Whether a reader at position element `element` has read everything up to stream id `id`. */
export function positionReached(element: string, id: string): boolean {
  const [at, read] = splitElement(element);
  const [am, as] = streamId(at);
  const [bm, bs] = streamId(id);
  return am > bm || (am === bm && (as > bs || (as === bs && read === undefined)));
}

/** How many outputs of `record` a reader at `element` has read already (0 unless it is inside it). */
export function outputsReadOf(record: OutboxRecord, element: string): number {
  const [at, read] = splitElement(element);
  return at === record.position ? (read ?? 0) : 0;
}

/**
 * Where XREAD resumes for a position element: after its record or, when the
 * record was partly read, just before it, so that it is read again (and the
 * outputs already read skipped, see `outputsReadOf`).
 */
function readAfter(element: string): string {
  const [at, read] = splitElement(element);
  if (read === undefined) return at;
  const [ms, seq] = streamId(at);
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  return ms > 0n ? `${ms - 1n}-18446744073709551615` : '0';
}

/**
 * Reading a partition's outbox: the outputs stream (for readers) and the
 * mail stream with the relay's position in it.
 */
export class OutboxStore {
  constructor(private readonly client: RedisClient) {}

  /** Mail not relayed yet, after the relay's position, at most `count`. */
  async pendingMail(keys: PartitionKeys, count: number): Promise<OutboxRecord[]> {
    const position = (await this.client.get(keys.relay)) ?? '0';
    const entries = (await this.client.xrange(keys.mail, `(${position}`, '+', 'COUNT', count)) as [string, string[]][];
    return toRecords(entries);
  }

  /** Mail up to `position` is in its target queues: remember it, and trim it from the mail stream. */
  async mailRelayed(keys: PartitionKeys, position: string): Promise<void> {
    const [ms, seq] = position.split('-');
    // MINID keeps ids >= its argument: the id right after `position` trims `position` too.
    // In this order on one connection (no MULTI needed: a crash between the two leaves
    // relayed entries untrimmed, which the next relay trims; and no ioredis pipeline, whose
    // construction copies every script defined on the client).
    await Promise.all([this.client.set(keys.relay, position), this.client.xtrim(keys.mail, 'MINID', `${ms}-${Number(seq ?? 0) + 1}`)]);
  }

  /** Mail entries committed and not yet relayed, over these partitions. */
  async unrelayedMail(keys: PartitionKeys[]): Promise<number> {
    // One command per partition (each its own slot under Redis Cluster); sent together all the same.
    const lengths = await Promise.all(keys.map((k) => this.client.xlen(k.mail)));
    return lengths.reduce((a, b) => a + b, 0);
  }

  /** The newest position of each outbox ("0" when empty). */
  async tails(keys: PartitionKeys[]): Promise<string[]> {
    const newest = await Promise.all(keys.map((k) => this.client.xrevrange(k.outbox, '+', '-', 'COUNT', 1)));
    return newest.map((e) => (e.length > 0 ? e[0]![0] : '0'));
  }

  /**
   * Block up to `blockMs` for records after the given position elements of
   * several outboxes (a partly read record is read again). Needs a connection
   * of its own (XREAD BLOCK holds it).
   */
  static async read(
    blocking: RedisClient,
    streams: { keys: PartitionKeys; after: string }[],
    count: number,
    blockMs: number,
  ): Promise<{ partition: number; records: OutboxRecord[] }[]> {
    let res: [string, [string, string[]][]][] | null;
    if (blocking instanceof Cluster) {
      // Each outbox is in its own slot: one non-blocking read per partition, then a short wait if all were empty.
      const parts = await Promise.all(streams.map((s) => blocking.xread('COUNT', count, 'STREAMS', s.keys.outbox, readAfter(s.after))));
      res = parts.flatMap((p) => (p ?? []) as [string, [string, string[]][]][]);
      if (res.length === 0) await new Promise((r) => setTimeout(r, Math.min(blockMs, 100)));
    } else {
      const names = streams.map((s) => s.keys.outbox);
      const ids = streams.map((s) => readAfter(s.after));
      res = (await blocking.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', ...names, ...ids)) as [string, [string, string[]][]][] | null;
    }
    if (!res) return [];
    const byName = new Map(streams.map((s) => [s.keys.outbox, s.keys.partition]));
    return res.map(([name, entries]) => ({ partition: byName.get(name)!, records: toRecords(entries) }));
  }
}
