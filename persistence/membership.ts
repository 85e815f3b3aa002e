import { registerScripts, type RedisClient } from './scripts';

/** The live workers of a namespace: each renews its own entry; an entry not renewed within its TTL is gone. */
export class MembershipStore {
  private readonly key: string;

  constructor(
    private readonly client: RedisClient,
    namespace: string,
  ) {
    registerScripts(client);
    this.key = `{${namespace}}:workers`;
  }

  /** Renew this worker's entry; returns the live workers (sorted ids). */
  async heartbeat(workerId: string, ttlMs: number): Promise<string[]> {
    return (await this.client.kfMembership(this.key, workerId, ttlMs)).map(String);
  }

  /** Leave at once (graceful close): the others take the partitions without waiting for the TTL. */
  async leave(workerId: string): Promise<void> {
    await this.client.kfMembership(this.key, workerId, 0);
  }
}
