/**
 * Deleting what a run left in Redis: the bank example and the benches delete
 * their namespace at the end, and spec/helpers/redis.ts cleans up after tests.
 * SCAN + UNLINK in batches, so it is safe on a Redis others are using.
 */
import { Redis } from 'ioredis';

/** Delete every key whose name matches the SCAN pattern `match`; resolves how many were deleted. */
export async function unlinkMatching(client: Redis, match: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', match, 'COUNT', 1_000);
    cursor = next;
    if (keys.length > 0) deleted += await client.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

/**
 * Delete every key of a keyflow namespace — `{<ns>:<partition>}:…` (journals,
 * snapshots, outboxes, the partitions' BullMQ queues) and `{<ns>}:…` (settings,
 * workers): see persistence/keys.ts. Close the systems using it first.
 * `redis`: a client (left open) or a URL (a client is opened for the call).
 */
export async function deleteNamespace(redis: Redis | string, namespace: string): Promise<number> {
  // A namespace is [a-z][a-z0-9_-]*: anything else (a glob character above all) is not one.
  if (!/^[a-z][a-z0-9_-]*$/.test(namespace)) throw new TypeError(`deleteNamespace: not a keyflow namespace: ${JSON.stringify(namespace)}`);
  const match = `{${namespace}[:}]*`;
  if (typeof redis !== 'string') return unlinkMatching(redis, match);
  const client = new Redis(redis, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {}); // a failed command rejects; no unhandled 'error' events besides
  try {
    await client.connect();
    return await unlinkMatching(client, match);
  } finally {
    client.disconnect();
  }
}
