import type { PartitionKeys } from './keys';
import type { RedisClient } from './scripts';

/** Durable partition-level flags: a partition paused by supervision ('escalate'), until resumed. */
export class PartitionStateStore {
  constructor(private readonly client: RedisClient) {}

  async pause(keys: PartitionKeys, why: string): Promise<void> {
    await this.client.set(keys.paused, why, 'NX');
  }

  async isPaused(keys: PartitionKeys): Promise<boolean> {
    return (await this.client.exists(keys.paused)) === 1;
  }

  /** Why the partition is paused, or undefined. */
  async pausedBecause(keys: PartitionKeys): Promise<string | undefined> {
    return (await this.client.get(keys.paused)) ?? undefined;
  }

  async resume(keys: PartitionKeys): Promise<boolean> {
    return (await this.client.del(keys.paused)) === 1;
  }

  /** Stopped actors of a partition: ref -> JSON { type, key, at, error }. */
  async stopped(keys: PartitionKeys): Promise<Record<string, string>> {
    return this.client.hgetall(keys.stopped);
  }
}
