import { Queue, type JobsOptions } from 'bullmq';
import type { Redis, Cluster } from 'ioredis';
import { QUEUE_NAME, jobData, toWire, type MailboxJobData, type WireEnvelope, type WireTuple } from './envelope';

export interface ProducerOptions {
  /** BullMQ prefix of a partition's queue (its hash tag). */
  queuePrefix: (partition: number) => string;
  /** At most this many events in one job. @default 500 */
  maxEventsPerJob?: number;
}

/** One `enqueue` call waiting for its lane's next write: its envelopes in wire form. */
interface Pending {
  wire: WireTuple[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface Lane {
  pending: Pending[];
  flushing: boolean;
}

const JOB_OPTIONS: JobsOptions = { removeOnComplete: true, removeOnFail: false, attempts: 1 };

/**
 * Puts envelopes into the partitions' queues. Each partition is a lane with at
 * most one write in flight (as a Kafka producer with one in-flight request per
 * partition): envelopes sent meanwhile are coalesced into the next job, so a
 * partition's jobs are written in send order and a burst costs one write.
 */
export class Producer {
  private readonly queues = new Map<number, Queue>();
  private readonly lanes = new Map<number, Lane>();
  private readonly maxEventsPerJob: number;
  private closed = false;

  constructor(
    private readonly connection: Redis | Cluster,
    private readonly opts: ProducerOptions,
  ) {
    this.maxEventsPerJob = opts.maxEventsPerJob ?? 500;
  }

  queue(partition: number): Queue {
    let q = this.queues.get(partition);
    if (!q) {
      q = new Queue(QUEUE_NAME, {
        connection: this.connection,
        prefix: this.opts.queuePrefix(partition),
        defaultJobOptions: JOB_OPTIONS,
        streams: { events: { maxLen: 100 } },
      });
      q.on('error', () => {
        /* surfaced through the rejected add() */
      });
      this.queues.set(partition, q);
    }
    return q;
  }

  /** Resolves once Redis holds the envelopes, in order after everything sent before to this partition. */
  enqueue(partition: number, envelopes: WireEnvelope[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('producer is closed'));
    if (envelopes.length === 0) return Promise.resolve();
    let lane = this.lanes.get(partition);
    if (!lane) {
      lane = { pending: [], flushing: false };
      this.lanes.set(partition, lane);
    }
    const wire = envelopes.map(toWire);
    const done = new Promise<void>((resolve, reject) => lane!.pending.push({ wire, resolve, reject }));
    if (!lane.flushing) {
      lane.flushing = true;
      queueMicrotask(() => void this.flush(partition, lane!));
    }
    return done;
  }

  /** A job delivered after `delayMs`, outside the lane's order (that is what a delay means). */
  async enqueueDelayed(partition: number, envelope: WireEnvelope, delayMs: number, jobId?: string): Promise<void> {
    if (this.closed) throw new Error('producer is closed');
    const data = jobData([toWire(envelope)]);
    await this.queue(partition).add('events', data, { ...JOB_OPTIONS, delay: delayMs, jobId });
  }

  private async flush(partition: number, lane: Lane): Promise<void> {
    while (lane.pending.length > 0) {
      const batch = lane.pending.splice(0, lane.pending.length);
      const all = batch.length === 1 ? batch[0]!.wire : batch.flatMap((p) => p.wire);
      const jobs: { name: string; data: MailboxJobData; opts: JobsOptions }[] = [];
      for (let i = 0; i < all.length; i += this.maxEventsPerJob) {
        jobs.push({ name: 'events', data: jobData(all.slice(i, i + this.maxEventsPerJob)), opts: JOB_OPTIONS });
      }
      try {
        const q = this.queue(partition);
        if (jobs.length === 1) await q.add(jobs[0]!.name, jobs[0]!.data, jobs[0]!.opts);
        else await q.addBulk(jobs);
        for (const p of batch) p.resolve();
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    lane.flushing = false;
  }

  /** Jobs of these partitions waiting or being processed (delayed ones excluded: they are not due). */
  async backlog(partitions: number[]): Promise<number> {
    const counts = await Promise.all(partitions.map((p) => this.queue(p).getJobCounts('wait', 'active', 'prioritized')));
    return counts.reduce((sum, c) => sum + Object.values(c).reduce((a, b) => a + b, 0), 0);
  }

  /** Events waiting or in flight in this process. */
  get pendingCount(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.pending.reduce((a, p) => a + p.wire.length, 0) + (lane.flushing ? 1 : 0);
    return n;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.pendingCount > 0) await new Promise((r) => setTimeout(r, 5));
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
  }
}
