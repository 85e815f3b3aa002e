/**
 * Deleting a namespace's keys: SCAN + UNLINK in batches, so it is safe on a
 * Redis others are using; on a Cluster, every master is scanned.
 */
import { Cluster, Redis } from 'ioredis';
import { InvalidOptionError } from './errors';
import { NAMESPACE_PATTERN, namespaceKeysPattern } from './keys';
import type { RedisClient } from './scripts';

/** Delete every key whose name matches the SCAN pattern `match` (every master of a cluster); resolves how many were deleted. */
export async function unlinkMatching(client: RedisClient, match: string): Promise<number> {
  let deleted = 0;
  for (const node of client instanceof Cluster ? client.nodes('master') : [client]) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1_000);
      cursor = next;
      // One key a command: under a cluster the keys of a batch may sit in different slots.
      if (keys.length > 0) deleted += (await Promise.all(keys.map((k) => node.unlink(k)))).reduce((a, b) => a + b, 0);
    } while (cursor !== '0');
  }
  return deleted;
}

/**
 * Delete every key of a keyflow namespace — journals, snapshots, outboxes, the
 * partitions' BullMQ queues, settings, workers (persistence/keys.ts). Close the
 * systems using it first. `redis`: a client (left open) or a URL (a client is
 * opened for the call). Resolves how many keys were deleted.
 */
export async function deleteNamespace(redis: RedisClient | string, namespace: string): Promise<number> {
  if (typeof namespace !== 'string' || !NAMESPACE_PATTERN.test(namespace)) {
    throw new InvalidOptionError('deleteNamespace(namespace)', '[a-z][a-z0-9_-]*, at most 64 characters (a glob or any other string is not a keyflow namespace)', namespace);
  }
  if (typeof redis !== 'string') return unlinkMatching(redis, namespaceKeysPattern(namespace));
  const client = new Redis(redis, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {}); // a failed command rejects; no unhandled 'error' events besides
  try {
    await client.connect();
    return await unlinkMatching(client, namespaceKeysPattern(namespace));
  } finally {
    client.disconnect();
  }
}
