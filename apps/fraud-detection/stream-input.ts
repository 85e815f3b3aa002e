/**
 * Transactions from a Redis stream, read with a consumer group: each entry
 * is acknowledged (XACK) only once its transaction is held by keyflow (or,
 * for a bad entry, once it is counted), so a worker that stops or dies
 * resumes where it stopped: on start it first re-reads its own pending
 * entries, and it claims (XAUTOCLAIM) entries left pending by a dead consumer
 * of the group for longer than `claimIdleMs`. Transaction ids make the
 * re-submission of an entry harmless.
 *
 * An entry holds the transaction as JSON in a field `tx`, or one field per
 * transaction field (numbers as decimal text).
 */
import type { Cluster, Redis } from 'ioredis';
import { InvalidTransactionError, parseStreamEntry, type Transaction } from './transaction';

export interface StreamBatch {
  /** Entry ids read, bad ones included: acknowledge them all once handled. */
  ids: string[];
  transactions: Transaction[];
  bad: InvalidTransactionError[];
}

export interface StreamConsumerOptions {
  stream: string;
  /** @default 'fraud-detection' */
  group?: string;
  /** Stable across restarts of one worker, distinct between workers. */
  consumer: string;
  /** Entries per read. @default 500 */
  count?: number;
  /** How long a read waits for new entries (ms). @default 1000 */
  blockMs?: number;
  /** Claim entries pending this long at another consumer (ms). @default 30000 */
  claimIdleMs?: number;
}

type Entry = [id: string, fields: string[] | null];

/** XREADGROUP's reply as RESP2 arrays or a RESP3 map, flattened to the entries of one stream. */
function entriesOf(reply: unknown): Entry[] {
  if (!reply) return [];
  if (reply instanceof Map) return [...reply.values()].flat() as Entry[];
  if (Array.isArray(reply)) return reply.flatMap((s) => (Array.isArray(s) ? ((s as [string, Entry[]])[1] ?? []) : []));
  return Object.values(reply as Record<string, Entry[]>).flat();
}

export class StreamConsumer {
  readonly group: string;
  private readonly count: number;
  private readonly blockMs: number;
  private readonly claimIdleMs: number;
  /** Own pending entries come first (after a restart), then new ones. */
  private cursor: '0' | '>' = '0';
  private lastClaim = 0;

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly opts: StreamConsumerOptions,
  ) {
    this.group = opts.group ?? 'fraud-detection';
    this.count = opts.count ?? 500;
    this.blockMs = opts.blockMs ?? 1_000;
    this.claimIdleMs = opts.claimIdleMs ?? 30_000;
  }

  /** Create the group (at the start of the stream) unless it exists. */
  async ensureGroup(): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.opts.stream, this.group, '0', 'MKSTREAM');
    } catch (err) {
      if (!/BUSYGROUP/.test((err as Error).message)) throw err;
    }
  }

  /**
   * The next entries: pending ones of this consumer, claimed ones of dead
   * consumers, then new ones (waits up to blockMs). `ack`: entries of the
   * previous batch to acknowledge first; the XACK is written just before the
   * read on the same connection, so both take one round trip.
   */
  async read(ack: readonly string[] = []): Promise<StreamBatch> {
    // Both handled at once: a failed XACK rejects this read (an XACK awaited only after the blocking read
    // would be an unhandled rejection meanwhile, and crash the process).
    const [, entries] = await Promise.all([this.ack(ack), this.fetch()]);
    const batch: StreamBatch = { ids: [], transactions: [], bad: [] };
    for (const [id, fields] of entries) {
      batch.ids.push(id);
      try {
        // A pending entry deleted from the stream comes back without fields.
        if (!fields) throw new InvalidTransactionError(`entry ${id}`, 'deleted from the stream before it was handled');
        batch.transactions.push(parseStreamEntry(id, fields));
      } catch (err) {
        if (!(err instanceof InvalidTransactionError)) throw err;
        batch.bad.push(err);
      }
    }
    return batch;
  }

  private async fetch(): Promise<Entry[]> {
    let entries: Entry[] = [];
    if (this.cursor === '0') {
      entries = entriesOf(await this.redis.xreadgroup('GROUP', this.group, this.opts.consumer, 'COUNT', this.count, 'STREAMS', this.opts.stream, '0'));
      if (entries.length === 0) this.cursor = '>';
    }
    if (entries.length === 0 && Date.now() - this.lastClaim >= Math.min(this.claimIdleMs, 5_000)) {
      this.lastClaim = Date.now();
      const claimed = (await this.redis.xautoclaim(this.opts.stream, this.group, this.opts.consumer, this.claimIdleMs, '0-0', 'COUNT', this.count)) as unknown[];
      entries = ((claimed?.[1] as Entry[] | undefined) ?? []).filter((e) => e !== null);
    }
    if (entries.length === 0) {
      entries = entriesOf(await this.redis.xreadgroup('GROUP', this.group, this.opts.consumer, 'COUNT', this.count, 'BLOCK', this.blockMs, 'STREAMS', this.opts.stream, '>'));
    }
    return entries;
  }

  async ack(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.redis.xack(this.opts.stream, this.group, ...ids);
  }

  /** Pending entries of the group, and entries not yet delivered to it (Redis >= 7: `lag`). */
  async backlog(): Promise<{ pending: number; lag: number | undefined }> {
    const groups = (await this.redis.xinfo('GROUPS', this.opts.stream)) as unknown[];
    for (const g of groups) {
      const info = g instanceof Map ? Object.fromEntries(g) : Array.isArray(g) ? Object.fromEntries(pairs(g as unknown[])) : (g as Record<string, unknown>);
      if (info.name === this.group) return { pending: Number(info.pending ?? 0), lag: info.lag === null || info.lag === undefined ? undefined : Number(info.lag) };
    }
    return { pending: 0, lag: undefined };
  }
}

function pairs(flat: unknown[]): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([String(flat[i]), flat[i + 1]]);
  return out;
}
