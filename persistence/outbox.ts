import type { PartitionKeys } from './keys';
import type { RedisClient } from './scripts';
import type { OutboxKind } from './commit';

export interface OutboxRecord {
  /** Stream entry id: the record's position in its partition's outbox. */
  position: string;
  kind: OutboxKind;
  body: string;
}

function toRecords(entries: [string, string[]][]): OutboxRecord[] {
  return entries.map(([position, fields]) => {
    const rec: OutboxRecord = { position, kind: 'out', body: '' };
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'kind') rec.kind = fields[i + 1] as OutboxKind;
      else if (fields[i] === 'body') rec.body = fields[i + 1]!;
    }
    return rec;
  });
}

/** Reading a partition's outbox, and the relay's position in it. */
export class OutboxStore {
  constructor(private readonly client: RedisClient) {}

  /** Records after `afterPosition` ("0" = from the start), at most `count`. */
  async after(keys: PartitionKeys, afterPosition: string, count: number): Promise<OutboxRecord[]> {
    const entries = (await this.client.xrange(keys.outbox, `(${afterPosition}`, '+', 'COUNT', count)) as [string, string[]][];
    return toRecords(entries);
  }

  async relayPosition(keys: PartitionKeys): Promise<string> {
    return (await this.client.get(keys.relay)) ?? '0';
  }

  async setRelayPosition(keys: PartitionKeys, position: string): Promise<void> {
    await this.client.set(keys.relay, position);
  }

  /** The newest position of each outbox ("0" when empty). */
  async tails(keys: PartitionKeys[]): Promise<string[]> {
    const pipeline = this.client.pipeline();
    for (const k of keys) pipeline.xrevrange(k.outbox, '+', '-', 'COUNT', 1);
    const res = (await pipeline.exec()) ?? [];
    return res.map(([err, entries]) => {
      if (err) throw err;
      const e = entries as [string, string[]][];
      return e.length > 0 ? e[0]![0] : '0';
    });
  }

  /**
   * Block up to `blockMs` for records after the given positions of several
   * outboxes. Needs a connection of its own (XREAD BLOCK holds it).
   */
  static async read(
    blocking: RedisClient,
    streams: { keys: PartitionKeys; after: string }[],
    count: number,
    blockMs: number,
  ): Promise<{ partition: number; records: OutboxRecord[] }[]> {
    const names = streams.map((s) => s.keys.outbox);
    const ids = streams.map((s) => s.after);
    const res = (await blocking.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', ...names, ...ids)) as [string, [string, string[]][]][] | null;
    if (!res) return [];
    const byName = new Map(streams.map((s) => [s.keys.outbox, s.keys.partition]));
    return res.map(([name, entries]) => ({ partition: byName.get(name)!, records: toRecords(entries) }));
  }
}
