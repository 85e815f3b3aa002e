import type { PartitionKeys } from './keys';
import { registerScripts, type RedisClient } from './scripts';

/** A lease held on a partition: the fencing token every commit presents. */
export interface Lease {
  readonly partition: number;
  readonly epoch: number;
  /** `<epoch>|<owner>`: the exact value the commit script compares. */
  readonly value: string;
}

export type AcquireResult =
  | { acquired: true; lease: Lease }
  | { acquired: false; holder: string; remainingMs: number };

/** Partition leases with epochs (fencing tokens) in Redis. */
export class LeaseStore {
  constructor(private readonly client: RedisClient) {
    registerScripts(client);
  }

  /** Take the lease, or keep it when `owner` holds it already. */
  async acquire(keys: PartitionKeys, owner: string, ttlMs: number): Promise<AcquireResult> {
    if (owner.includes('|')) throw new Error(`owner id must not contain "|": ${owner}`);
    const [epoch, value, ttl] = await this.client.kfLeaseAcquire(keys.lease, keys.epoch, owner, ttlMs);
    if (Number(epoch) > 0) {
      return { acquired: true, lease: { partition: keys.partition, epoch: Number(epoch), value: String(value) } };
    }
    return { acquired: false, holder: String(value), remainingMs: Number(ttl) };
  }

  /** Extend the lease; false when it was lost (expired or taken over). */
  async renew(keys: PartitionKeys, lease: Lease, ttlMs: number): Promise<boolean> {
    return (await this.client.kfLeaseRenew(keys.lease, lease.value, ttlMs)) === 1;
  }

  /** Give the lease up at once, so another worker can take the partition without waiting for the TTL. */
  async release(keys: PartitionKeys, lease: Lease): Promise<boolean> {
    return (await this.client.kfLeaseRelease(keys.lease, lease.value)) === 1;
  }
}
