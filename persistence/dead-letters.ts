import type { PartitionKeys } from './keys';
import type { RedisClient } from './scripts';

export interface DeadLetterRecord {
  partition: number;
  /** Stream entry id in the partition's dead-letter stream. */
  position: string;
  body: string;
}

/** The dead-letter streams (written by the commit script, read and pruned here). */
export class DeadLetterStore {
  constructor(private readonly client: RedisClient) {}

  async list(keys: PartitionKeys[], limit: number): Promise<DeadLetterRecord[]> {
    const res = await Promise.all(keys.map((k) => this.client.xrange(k.deadLetters, '-', '+', 'COUNT', limit)));
    const out: DeadLetterRecord[] = [];
    res.forEach((entries, i) => {
      for (const [position, fields] of entries) {
        const at = fields.indexOf('body');
        out.push({ partition: keys[i]!.partition, position, body: at >= 0 ? fields[at + 1]! : '{}' });
      }
    });
    return out;
  }

  /** Remove one record; false when it was not there (already retried or discarded). */
  async remove(keys: PartitionKeys, position: string): Promise<boolean> {
    return (await this.client.xdel(keys.deadLetters, position)) === 1;
  }
}
