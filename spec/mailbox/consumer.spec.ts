import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { PartitionConsumer, decodeJobData, type MailboxJob } from '../../mailbox';
import { jobData, toWire } from '../../mailbox/envelope';
import { redisUrl, uniqueNamespace, cleanupNamespace } from '../helpers/redis';

/** A job as the producer writes it: one envelope. */
const data = (id: string) => jobData([toWire({ id, ts: 1, type: 't', key: 'k', event: { type: 'e' } })]);

describe('mailbox consumer', () => {
  const ns = uniqueNamespace('consumer');
  const prefix = `{${ns}:0}`;
  let conn: Redis;
  let queue: Queue;
  let consumer: PartitionConsumer;
  let errors: Error[];

  beforeEach(() => {
    conn = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    queue = new Queue('q', { connection: conn, prefix });
    errors = [];
    consumer = new PartitionConsumer(conn, { prefix, lockDurationMs: 5_000, blockSeconds: 1, onError: (e) => errors.push(e) });
  });

  afterEach(async () => {
    await consumer.close();
    await queue.close();
    conn.disconnect();
    await cleanupNamespace(redisUrl(), ns);
  });

  const ids = (jobs: MailboxJob[]) => jobs.map((j) => j.data && decodeJobData(j.data)?.[0]?.id);

  it('acknowledging leftovers leaves no job in progress that nobody holds', async () => {
    for (const id of ['a', 'b', 'c', 'd']) await queue.add('events', data(id));
    // A job taken and not acknowledged (as by an owner that lost its lease): found as a leftover.
    expect(ids(await consumer.next(1, 100))).toEqual(['a']);
    const leftovers = await consumer.leftovers();
    expect(ids(leftovers)).toEqual(['a']);
    // Its job object was read from the queue, not handed out by the consumer: acknowledged
    // without taking the next job (which BullMQ's script would take, then fail, for such an object).
    await consumer.ack(leftovers);
    expect(await conn.lrange(`${prefix}:q:active`, 0, -1)).toEqual([]);
    expect(ids(await consumer.next(10, 100))).toEqual(['b']);
    // A job the consumer handed out, acknowledged: the next fetch takes the one after it.
    const handed = await consumer.next(10, 100);
    expect(ids(handed)).toEqual(['c']);
    await consumer.ack(handed);
    expect(ids(await consumer.next(10, 100))).toEqual(['d']);
    expect(await conn.llen(`${prefix}:q:active`)).toBe(2); // b (never acknowledged) and d
    expect(errors).toEqual([]);
  });

  it("names the queue's lists and every record of a taken job for a commit's acknowledgement (BullMQ's key layout)", async () => {
    for (const id of ['a', 'b']) await queue.add('events', data(id));
    const taken = await consumer.next(1, 100);
    const id = taken[0]!.id!;
    expect(await conn.lrange(consumer.lists.activeKey, 0, -1)).toEqual([id]);
    expect(await conn.llen(consumer.lists.waitingKey)).toBe(1);
    const ack = consumer.acknowledgement(taken);
    expect(ack.ids).toEqual([id]);
    // What BullMQ keeps of the job (its hash and lock at least): all deleted with the acknowledgement.
    const records = (await conn.keys(`${prefix}:q:*`)).filter((k) => k === `${prefix}:q:${id}` || k.startsWith(`${prefix}:q:${id}:`));
    expect(records).toEqual(expect.arrayContaining([`${prefix}:q:${id}`, `${prefix}:q:${id}:lock`]));
    expect(ack.deleteKeys).toEqual(expect.arrayContaining(records));
  });
});
