import { Redis, Cluster, type RedisOptions, type ClusterNode, type ClusterOptions } from 'ioredis';
import { hostname } from 'node:os';
import { v4 as uuidv4 } from 'uuid';
import { partitionOf, PartitionConsumer, Producer, type Envelope } from '../mailbox';
import {
  actorRef,
  CommitStore,
  DeadLetterStore,
  InvalidOptionError,
  JournalStore,
  LeaseStore,
  MembershipStore,
  namespaceMetaKey,
  NAMESPACE_PATTERN,
  OutboxStore,
  outputsReadOf,
  PartitionKeys,
  PartitionStateStore,
  positionReached,
  POSITION_ELEMENT,
  registerScripts,
  toError,
  type JournalEntry,
  type RedisClient,
} from '../persistence';
import { ActorHost } from './actor-host';
import { assignPartitions } from './assignment';
import type { ActorDefinition } from './define-actor';
import {
  AskTimeoutError,
  DeadLetterNotFoundError,
  DrainTimeoutError,
  EventDeadLetteredError,
  NamespaceMismatchError,
  SystemClosedError,
  UnknownActorTypeError,
} from './errors';
import { MachineRunner } from './machine-runner';
import { PartitionWorker, RESUME_EVENT_TYPE } from './partition-worker';
import { stateView, type ActorState } from './state-view';
import type { AskReply, DeadLetterBody, Output } from './step-builder';
import { SystemEvents } from './system-events';
import { intOption, toEnvelope, type SendInput, type ValidationLimits } from './validation';
import { verifyType, type VerifyOptions, type VerifyReport } from './verify';

/** Where Redis is: a URL, ioredis options, or a cluster. */
export type RedisConfig = string | RedisOptions | { cluster: ClusterNode[]; options?: ClusterOptions };

export interface ActorSystemOptions {
  redis: RedisConfig;
  /** Isolates systems sharing one Redis: `[a-z][a-z0-9_-]*`. */
  namespace: string;
  /** Fixed for the life of a namespace. @default 16 */
  partitions?: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- definitions of machines of any type
  actors: ActorDefinition<any>[];
  /** false: a producer/reader only. @default true */
  worker?: boolean;
  /** Partition lease TTL (ms): a dead worker's partitions move after this. @default 2000 */
  leaseTtlMs?: number;
  /** Live actors kept in memory by this worker. @default 50000 */
  maxLiveActors?: number;
  /** Events applied and committed together (one script call). @default 1000 */
  maxBatchEvents?: number;
  /** Largest event accepted, as JSON bytes. @default 65536 */
  maxEventBytes?: number;
  /** Event ids are remembered (for de-dup) at least this long (ms). @default 86400000 */
  dedupRetainMs?: number;
  /** At most this many remembered event ids per partition. @default 1000000 */
  dedupMaxEntries?: number;
  /** Approximate length kept of each partition's outbox and dead-letter stream. @default 100000 */
  streamMaxLen?: number;
  /** Identity of this worker in leases. @default `<hostname>-<pid>-<random>` */
  workerId?: string;
  /** close() gives up waiting (for the step in hand, for Redis) after this long. @default 10000 */
  closeTimeoutMs?: number;
  /**
   * A Redis command with no answer after this long fails (and is retried by
   * the worker), so a stalled connection cannot hang a partition. Keep it
   * above 10 s (BullMQ blocks up to 10 s waiting for delayed jobs). @default 15000
   */
  commandTimeoutMs?: number;
  /** Watchdog: a partition loop that has not gone round for this long is restarted. @default 60000 */
  watchdogStallMs?: number;
}

export interface SendOptions {
  /** Idempotency id: a second send with the same id (to the same actor) is applied once. */
  id?: string;
  /** Event time (ms). @default now */
  ts?: number;
  /** Deliver after this long (ms), outside the key's send order. */
  delayMs?: number;
}

export interface SendManyItem {
  type: string;
  key: string;
  event: unknown;
  id?: string;
  ts?: number;
}

export interface DeadLetter {
  id: string;
  type: string;
  key: string;
  event: Record<string, unknown>;
  error: { name: string; message: string };
  attempts: number;
  ts: number;
  at: number;
}

export interface OutputsOptions {
  /** `'start'` (everything retained), `'now'`, or a `position` of an output read before. @default 'start' */
  from?: string;
  /**
   * `'now'`: end the iteration once every output committed before this call
   * was yielded (a bounded read, e.g. after `drain()`). @default undefined (follow forever)
   */
  until?: 'now';
}

/** An output with the position to resume after it. */
export interface PositionedOutput extends Output {
  position: string;
}

export interface ActorSystem {
  send(type: string, key: string, event: unknown, opts?: SendOptions): Promise<{ id: string }>;
  sendMany(items: SendManyItem[]): Promise<{ ids: string[] }>;
  ask(type: string, key: string, event: unknown, opts?: SendOptions & { timeoutMs?: number }): Promise<ActorState>;
  get(type: string, key: string): Promise<ActorState | undefined>;
  journal(type: string, key: string, opts?: { fromSeq?: number; toSeq?: number }): Promise<JournalEntry[]>;
  replay(type: string, key: string, opts: { toSeq: number }): Promise<ActorState | undefined>;
  outputs(opts?: OutputsOptions): AsyncIterable<PositionedOutput>;
  /** The position after the newest output committed so far: `outputs({ from })` continues there (a concrete `'now'`). */
  outputsPosition(): Promise<string>;
  deadLetters(): {
    list(opts?: { limit?: number }): Promise<DeadLetter[]>;
    retry(id: string): Promise<void>;
    discard(id: string): Promise<void>;
  };
  drain(opts?: { timeoutMs?: number }): Promise<void>;
  /**
   * Resume an actor stopped by supervision (`onExhausted: 'stop'`): its held
   * dead letters are delivered again, in order, ahead of what is sent after.
   */
  resume(type: string, key: string): Promise<{ redelivered: number }>;
  /** Resume a partition paused by supervision (`onExhausted: 'escalate'`). */
  resumePartition(partition: number): Promise<boolean>;
  /** Partitions paused by supervision, with why. */
  pausedPartitions(): Promise<{ partition: number; reason: string }[]>;
  /**
   * Replay every key's journal of `type` with the current machine and compare
   * it with the stored snapshot (at the snapshot's seq). Reads only.
   */
  verify(type: string, opts?: VerifyOptions): Promise<VerifyReport>;
  close(): Promise<void>;
  readonly events: SystemEvents;
  readonly namespace: string;
  readonly partitions: number;
  /** Partitions whose lease this worker holds. */
  ownedPartitions(): number[];
  /** The live workers of the namespace, as this worker last saw them (empty for a producer). */
  liveWorkers(): string[];
  /** This process's worker id. */
  readonly workerId: string;
}

interface Resolved {
  namespace: string;
  partitions: number;
  worker: boolean;
  leaseTtlMs: number;
  maxLiveActors: number;
  maxBatchEvents: number;
  maxEventBytes: number;
  dedupRetainMs: number;
  dedupMaxEntries: number;
  streamMaxLen: number;
  workerId: string;
  closeTimeoutMs: number;
  commandTimeoutMs: number;
  watchdogStallMs: number;
}

function resolveOptions(o: ActorSystemOptions): Resolved {
  if (typeof o !== 'object' || o === null) throw new InvalidOptionError('createActorSystem(options)', 'an object', o);
  if (typeof o.namespace !== 'string' || !NAMESPACE_PATTERN.test(o.namespace)) {
    throw new InvalidOptionError('namespace', 'a string matching [a-z][a-z0-9_-]* (at most 64 characters)', o.namespace);
  }
  if (!Array.isArray(o.actors) || o.actors.length === 0) throw new InvalidOptionError('actors', 'a non-empty array of defineActor(...) results', o.actors);
  const types = new Set<string>();
  for (const a of o.actors) {
    if (!a || typeof a.type !== 'string' || !a.machine) throw new InvalidOptionError('actors[]', 'defineActor(...) results', a);
    if (types.has(a.type)) throw new InvalidOptionError('actors', 'unique actor types', a.type);
    types.add(a.type);
  }
  if (o.worker !== undefined && typeof o.worker !== 'boolean') throw new InvalidOptionError('worker', 'a boolean', o.worker);
  const workerId = o.workerId ?? `${hostname()}-${process.pid}-${uuidv4().slice(0, 8)}`;
  if (typeof workerId !== 'string' || workerId.length === 0 || workerId.includes('|')) {
    throw new InvalidOptionError('workerId', 'a non-empty string without "|"', workerId);
  }
  return {
    namespace: o.namespace,
    partitions: intOption('partitions', o.partitions, 16, 1, 16_384),
    worker: o.worker ?? true,
    leaseTtlMs: intOption('leaseTtlMs', o.leaseTtlMs, 2_000, 200),
    maxLiveActors: intOption('maxLiveActors', o.maxLiveActors, 50_000, 1),
    maxBatchEvents: intOption('maxBatchEvents', o.maxBatchEvents, 1_000, 1, 10_000),
    maxEventBytes: intOption('maxEventBytes', o.maxEventBytes, 65_536, 64, 16 * 1024 * 1024),
    dedupRetainMs: intOption('dedupRetainMs', o.dedupRetainMs, 86_400_000, 1_000),
    dedupMaxEntries: intOption('dedupMaxEntries', o.dedupMaxEntries, 1_000_000, 1_000),
    streamMaxLen: intOption('streamMaxLen', o.streamMaxLen, 100_000, 100),
    workerId,
    closeTimeoutMs: intOption('closeTimeoutMs', o.closeTimeoutMs, 10_000, 0),
    commandTimeoutMs: intOption('commandTimeoutMs', o.commandTimeoutMs, 15_000, 11_000),
    watchdogStallMs: intOption('watchdogStallMs', o.watchdogStallMs, 60_000, 1_000),
  };
}

function connect(config: RedisConfig, commandTimeout: number): RedisClient {
  const common = { maxRetriesPerRequest: null, enableReadyCheck: true, commandTimeout } as const;
  if (typeof config === 'string') return new Redis(config, common);
  if ('cluster' in config) {
    return new Cluster(config.cluster, { ...config.options, redisOptions: { ...config.options?.redisOptions, ...common } });
  }
  return new Redis({ ...config, ...common });
}

/** A new connection to the same Redis (for blocking reads). */
function duplicate(client: RedisClient): RedisClient {
  // Both branches call duplicate(): the union of their signatures is not callable in TypeScript.
  return client instanceof Cluster ? client.duplicate() : client.duplicate();
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Idle connections kept for `ask` replies (each ask in flight holds one: BLPOP blocks it). */
const MAX_IDLE_ASK_CONNECTIONS = 8;

/**
 * Create an actor system: connect, check the namespace, and (with
 * `worker: true`) start taking partitions' leases and processing their events.
 */
export async function createActorSystem(options: ActorSystemOptions): Promise<ActorSystem> {
  const cfg = resolveOptions(options);
  if (options.redis === undefined || options.redis === null || (typeof options.redis !== 'string' && typeof options.redis !== 'object')) {
    throw new InvalidOptionError('redis', 'a URL, ioredis options or { cluster: [...] }', options.redis);
  }
  const client = connect(options.redis, cfg.commandTimeoutMs);
  client.on('error', () => {
    /* ioredis reconnects by itself; commands wait for it (maxRetriesPerRequest: null) */
  });
  try {
    registerScripts(client);
    await checkNamespace(client, cfg);
  } catch (err) {
    client.disconnect();
    throw err;
  }
  return new System(client, cfg, options.actors);
}

async function checkNamespace(client: RedisClient, cfg: Resolved): Promise<void> {
  const key = namespaceMetaKey(cfg.namespace);
  await client.hsetnx(key, 'partitions', String(cfg.partitions));
  const stored = Number(await client.hget(key, 'partitions'));
  if (stored !== cfg.partitions) throw new NamespaceMismatchError(cfg.namespace, stored, cfg.partitions);
  const policy = await client.config('GET', 'maxmemory-policy').catch(() => undefined);
  const value = Array.isArray(policy) ? policy[1] : undefined;
  if (value !== undefined && value !== 'noeviction') {
    throw new InvalidOptionError('redis', "a Redis with maxmemory-policy 'noeviction' (evicting keys would lose journals)", value);
  }
}

class System implements ActorSystem {
  readonly events = new SystemEvents();
  private readonly keys: PartitionKeys[];
  private readonly runners = new Map<string, MachineRunner>();
  private readonly limits: ValidationLimits;
  private readonly producer: Producer;
  private readonly journals: JournalStore;
  private readonly commits: CommitStore;
  private readonly outbox: OutboxStore;
  private readonly deadLetterStore: DeadLetterStore;
  private readonly partitionState: PartitionStateStore;
  private readonly workers: PartitionWorker[] = [];
  /** Connections in a blocking read (ask replies, outputs), disconnected by close(). */
  private readonly blocking = new Set<RedisClient>();
  /** Idle connections for ask replies, reused instead of connecting once per ask. */
  private readonly idleAskConnections: RedisClient[] = [];
  private passivation: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private live: string[] = [];
  private readonly membership: MembershipStore;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly client: RedisClient,
    private readonly cfg: Resolved,
    actors: ActorDefinition[],
  ) {
    this.keys = Array.from({ length: cfg.partitions }, (_, p) => new PartitionKeys(cfg.namespace, p));
    for (const def of actors) this.runners.set(def.type, new MachineRunner(def));
    this.limits = { knownTypes: new Set(this.runners.keys()), maxEventBytes: cfg.maxEventBytes };
    this.producer = new Producer(client, { queuePrefix: (p) => this.keys[p]!.tag });
    this.journals = new JournalStore(client);
    this.commits = new CommitStore(client, {
      dedupRetainMs: cfg.dedupRetainMs,
      dedupMaxEntries: cfg.dedupMaxEntries,
      streamMaxLen: cfg.streamMaxLen,
      replyTtlMs: 60_000,
    });
    this.outbox = new OutboxStore(client);
    this.deadLetterStore = new DeadLetterStore(client);
    this.partitionState = new PartitionStateStore(client);
    this.membership = new MembershipStore(client, cfg.namespace);
    if (cfg.worker) this.startWorkers();
  }

  get namespace(): string {
    return this.cfg.namespace;
  }

  get partitions(): number {
    return this.cfg.partitions;
  }

  liveWorkers(): string[] {
    return [...this.live];
  }

  get workerId(): string {
    return this.cfg.workerId;
  }

  ownedPartitions(): number[] {
    return this.workers.filter((w) => w.holdsLease).map((w) => w.partition);
  }

  private startWorkers(): void {
    const host = new ActorHost(this.journals, this.runners, this.cfg.maxLiveActors);
    const leases = new LeaseStore(this.client);
    for (const keys of this.keys) {
      const consumer = new PartitionConsumer(this.client as never, {
        prefix: keys.tag,
        lockDurationMs: this.cfg.leaseTtlMs,
        onError: (err) => this.events.emit('error', err, { partition: keys.partition }),
      });
      const worker = new PartitionWorker(
        {
          keys,
          consumer,
          host,
          runners: this.runners,
          leases,
          commits: this.commits,
          outbox: this.outbox,
          producer: this.producer,
          events: this.events,
          partitionState: this.partitionState,
          now: Date.now,
        },
        {
          owner: this.cfg.workerId,
          leaseTtlMs: this.cfg.leaseTtlMs,
          maxBatchJobs: 100,
          maxBatchEvents: this.cfg.maxBatchEvents,
          partitions: this.cfg.partitions,
          validation: this.limits,
        },
      );
      this.workers.push(worker);
      worker.start();
    }
    const minIdle = Math.min(...[...this.runners.values()].map((r) => r.def.idleAfterMs));
    this.passivation = setInterval(() => host.passivateIdle(), Math.max(1_000, Math.floor(minIdle / 2)));
    this.passivation.unref();
    this.watchdog = setInterval(() => {
      for (const w of this.workers) void w.restartIfStalled(this.cfg.watchdogStallMs);
    }, Math.max(500, Math.floor(this.cfg.watchdogStallMs / 4)));
    this.watchdog.unref();
    // Membership: a heartbeat every third of the lease TTL; each worker takes the partitions the
    // assignment over the live workers gives it, and hands the others over.
    for (const w of this.workers) w.assigned = false;
    const beat = async () => {
      try {
        const live = await this.membership.heartbeat(this.cfg.workerId, this.cfg.leaseTtlMs);
        this.live = live.includes(this.cfg.workerId) ? live : [...live, this.cfg.workerId];
        const owners = assignPartitions(this.cfg.partitions, this.live);
        for (const w of this.workers) w.assigned = owners[w.partition] === this.cfg.workerId;
      } catch (err) {
        this.events.emit('error', toError(err), {});
      }
    };
    void beat();
    this.heartbeat = setInterval(() => void beat(), Math.max(50, Math.floor(this.cfg.leaseTtlMs / 3)));
    this.heartbeat.unref();
  }

  private ensureOpen(): void {
    if (this.closing) throw new SystemClosedError();
  }

  private partitionOf(type: string, key: string): number {
    return partitionOf(type, key, this.cfg.partitions);
  }

  async send(type: string, key: string, event: unknown, opts: SendOptions = {}): Promise<{ id: string }> {
    this.ensureOpen();
    const env = toEnvelope({ type, key, event, id: opts.id, ts: opts.ts }, this.limits, Date.now());
    // Only the id outlives the write: the envelope is garbage once the producer has its wire form.
    const { id } = env;
    await this.enqueue(env, opts.delayMs);
    return { id };
  }

  private async enqueue(env: Envelope, delayMs: number | undefined): Promise<void> {
    const p = this.partitionOf(env.type, env.key);
    if (delayMs !== undefined) {
      if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0) {
        throw new InvalidOptionError('opts.delayMs', 'a finite number of ms >= 0', delayMs);
      }
      if (delayMs > 0) return this.producer.enqueueDelayed(p, env, delayMs);
    }
    return this.producer.enqueue(p, [env]);
  }

  async sendMany(items: SendManyItem[]): Promise<{ ids: string[] }> {
    this.ensureOpen();
    if (!Array.isArray(items)) throw new InvalidOptionError('sendMany(items)', 'an array of { type, key, event, id?, ts? }', items);
    const now = Date.now();
    const envs = items.map((it, i) => {
      if (typeof it !== 'object' || it === null) throw new InvalidOptionError(`items[${i}]`, 'an object { type, key, event }', it);
      return toEnvelope(it as SendInput, this.limits, now);
    });
    const byPartition = new Map<number, Envelope[]>();
    for (const env of envs) {
      const p = this.partitionOf(env.type, env.key);
      let list = byPartition.get(p);
      if (!list) byPartition.set(p, (list = []));
      list.push(env);
    }
    const ids = envs.map((e) => e.id);
    await Promise.all([...byPartition].map(([p, list]) => this.producer.enqueue(p, list)));
    return { ids };
  }

  async ask(type: string, key: string, event: unknown, opts: SendOptions & { timeoutMs?: number } = {}): Promise<ActorState> {
    this.ensureOpen();
    const timeoutMs = intOption('opts.timeoutMs', opts.timeoutMs, 5_000, 1);
    const env = toEnvelope({ type, key, event, id: opts.id, ts: opts.ts }, this.limits, Date.now());
    env.ask = uuidv4();
    const keys = this.keys[this.partitionOf(type, key)]!;
    const conn = this.idleAskConnections.pop() ?? this.newBlockingConnection();
    this.blocking.add(conn);
    /** Whether the connection is left idle (no read cut off half way): then the next ask may use it. */
    let reusable = true;
    try {
      await this.enqueue(env, opts.delayMs);
      const deadline = Date.now() + timeoutMs + (opts.delayMs ?? 0);
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) throw new AskTimeoutError(type, key, env.id, timeoutMs);
        let res: [string, string] | null;
        try {
          res = await conn.blpop(keys.reply(env.ask), Math.min(left, 1_000) / 1000);
        } catch (err) {
          reusable = false;
          if (this.closing) throw new SystemClosedError();
          throw err;
        }
        if (this.closing) throw new SystemClosedError();
        if (!res) continue;
        const reply = JSON.parse(res[1]) as AskReply;
        if (reply.kind === 'state') return reply.state;
        if (reply.kind === 'dead-letter') throw new EventDeadLetteredError(type, key, env.id, reply.error);
        // A duplicate id: the event was applied (or dead-lettered) before; answer with the current state.
        const state = await this.get(type, key);
        if (state) return state;
        throw new EventDeadLetteredError(type, key, env.id, 'an earlier event with this id was dead-lettered');
      }
    } finally {
      this.blocking.delete(conn);
      if (reusable && !this.closing && this.idleAskConnections.length < MAX_IDLE_ASK_CONNECTIONS) this.idleAskConnections.push(conn);
      else conn.disconnect();
    }
  }

  /** A connection of its own for a blocking read; its errors are the reconnects ioredis handles. */
  private newBlockingConnection(): RedisClient {
    const conn = duplicate(this.client);
    conn.on('error', () => {});
    return conn;
  }

  private runner(type: string): MachineRunner {
    this.ensureOpen();
    const r = this.runners.get(type);
    if (!r) throw new UnknownActorTypeError(type, [...this.runners.keys()]);
    return r;
  }

  private checkKey(type: string, key: string): void {
    toEnvelope({ type, key, event: { type: 'get' } }, this.limits, 0);
  }

  async get(type: string, key: string): Promise<ActorState | undefined> {
    const runner = this.runner(type);
    this.checkKey(type, key);
    const keys = this.keys[this.partitionOf(type, key)]!;
    const loaded = await this.journals.load(keys, actorRef(type, key));
    if (loaded.seq === 0 && !loaded.snapshot) return undefined;
    return stateView(type, key, runner.rehydrate(key, loaded).snapshot, loaded.seq, runner.def.version);
  }

  async journal(type: string, key: string, opts: { fromSeq?: number; toSeq?: number } = {}): Promise<JournalEntry[]> {
    this.runner(type);
    this.checkKey(type, key);
    const fromSeq = intOption('fromSeq', opts.fromSeq, 1, 1);
    const toSeq = opts.toSeq === undefined ? -1 : intOption('toSeq', opts.toSeq, 1, 1);
    return this.journals.range(this.keys[this.partitionOf(type, key)]!, actorRef(type, key), fromSeq, toSeq);
  }

  async replay(type: string, key: string, opts: { toSeq: number }): Promise<ActorState | undefined> {
    const runner = this.runner(type);
    this.checkKey(type, key);
    const toSeq = intOption('toSeq', opts?.toSeq, 1, 0);
    if (toSeq === 0) return undefined;
    const keys = this.keys[this.partitionOf(type, key)]!;
    const loaded = await this.journals.load(keys, actorRef(type, key), { upToSeq: toSeq, fromScratch: true });
    if (loaded.tail.length === 0) return undefined;
    const applied = loaded.tail.length;
    return stateView(type, key, runner.rehydrate(key, { snapshot: undefined, seq: applied, tail: loaded.tail }).snapshot, applied, runner.def.version);
  }

  outputs(opts: OutputsOptions = {}): AsyncIterable<PositionedOutput> {
    this.ensureOpen();
    const from = opts.from ?? 'start';
    if (from !== 'start' && from !== 'now') decodePosition(from, this.cfg.partitions);
    if (opts.until !== undefined && opts.until !== 'now') throw new InvalidOptionError('opts.until', "'now' or undefined", opts.until);
    return { [Symbol.asyncIterator]: () => this.outputReader(from, opts.until === 'now') };
  }

  async outputsPosition(): Promise<string> {
    this.ensureOpen();
    return encodePosition(await this.outbox.tails(this.keys));
  }

  /**
   * An iterator over the outboxes of all partitions. Not a generator: `return()`
   * must end a read that is blocked in XREAD, which a suspended generator
   * cannot do.
   */
  private outputReader(from: string, untilNow: boolean): AsyncIterator<PositionedOutput> {
    const conn = this.newBlockingConnection();
    this.blocking.add(conn);
    let positions: string[] | undefined;
    /** With `until: 'now'`: each outbox's newest record when the iteration began. */
    const ends = untilNow ? this.outbox.tails(this.keys) : undefined;
    ends?.catch(() => {});
    /** Outputs read and not yet yielded: `buffer[taken]` on. */
    let buffer: PositionedOutput[] = [];
    let taken = 0;
    let done = false;
    const finish = (): IteratorResult<PositionedOutput> => {
      if (!done) {
        done = true;
        this.blocking.delete(conn);
        conn.disconnect();
      }
      return { done: true, value: undefined };
    };
    const fill = async (): Promise<IteratorResult<PositionedOutput>> => {
      positions ??= from === 'start' ? this.keys.map(() => '0') : from === 'now' ? await this.outbox.tails(this.keys) : decodePosition(from, this.cfg.partitions);
      while (taken >= buffer.length) {
        buffer = [];
        taken = 0;
        if (done || this.closing) return finish();
        if (ends) {
          const end = await ends;
          if (positions.every((pos, p) => positionReached(pos, end[p]!))) return finish();
        }
        let batches;
        try {
          batches = await OutboxStore.read(conn, this.keys.map((keys, p) => ({ keys, after: positions![p]! })), 500, 1_000);
        } catch (err) {
          if (done || this.closing) return finish();
          this.events.emit('error', toError(err), {});
          await sleep(200);
          continue;
        }
        for (const { partition, records } of batches) {
          // Within a partition's records, positions differ only in that partition's stream id.
          const [head, tail] = positionAround(positions, partition);
          for (const r of records) {
            if (r.kind === 'outs') {
              // A commit's outputs: the k-th of n is at "<id>/<k>", the last at "<id>" (all read). A
              // position inside this record (resuming) skips the outputs already read.
              const outs = JSON.parse(r.body) as PositionedOutput[];
              const skip = outputsReadOf(r, positions[partition]!);
              for (let k = skip; k < outs.length; k++) {
                const element = k + 1 < outs.length ? `${r.position}/${k + 1}` : r.position;
                const out = outs[k]!;
                out.position = head + element + tail;
                buffer.push(out);
              }
              positions[partition] = r.position;
              continue;
            }
            positions[partition] = r.position;
            if (r.kind !== 'out') continue;
            const out = JSON.parse(r.body) as PositionedOutput;
            out.position = head + r.position + tail;
            buffer.push(out);
          }
        }
      }
      return { done: false, value: buffer[taken++]! };
    };
    // An output already read is handed over without another async step.
    const next = (): Promise<IteratorResult<PositionedOutput>> => (taken < buffer.length ? Promise.resolve({ done: false, value: buffer[taken++]! }) : fill());
    return { next, return: async () => finish() };
  }

  deadLetters() {
    this.ensureOpen();
    const findRecord = async (id: string) => {
      const records = await this.deadLetterStore.list(this.keys, 10_000);
      for (const r of records) {
        const body = JSON.parse(r.body) as DeadLetterBody;
        if (body.id === id) return { record: r, body };
      }
      throw new DeadLetterNotFoundError(id);
    };
    return {
      list: async (opts: { limit?: number } = {}): Promise<DeadLetter[]> => {
        const limit = intOption('limit', opts.limit, 1_000, 1);
        const records = await this.deadLetterStore.list(this.keys, limit);
        return records.slice(0, limit).map((r) => JSON.parse(r.body) as DeadLetter);
      },
      retry: async (id: string): Promise<void> => {
        const { record, body } = await findRecord(id);
        // A new, deterministic id: the original is recorded as consumed. Enqueue first, then remove
        // the record: a crash in between leaves the record, and a second retry is de-duplicated.
        const retryId = `${body.id}~retry~${record.position}`;
        await this.enqueue({ id: retryId, ts: body.ts, type: body.type, key: body.key, event: body.event }, undefined);
        await this.deadLetterStore.remove(this.keys[record.partition]!, record.position);
      },
      discard: async (id: string): Promise<void> => {
        const { record } = await findRecord(id);
        await this.deadLetterStore.remove(this.keys[record.partition]!, record.position);
      },
    };
  }

  async resume(type: string, key: string): Promise<{ redelivered: number }> {
    this.runner(type);
    this.checkKey(type, key);
    const p = this.partitionOf(type, key);
    const records = (await this.deadLetterStore.list([this.keys[p]!], 100_000))
      .map((r) => ({ record: r, body: JSON.parse(r.body) as DeadLetterBody }))
      .filter(({ body }) => body.type === type && body.key === key);
    // The control event first, then the held events under derived ids (their own ids are consumed),
    // in one lane of the producer: the worker resumes the actor and applies them in this order.
    const envs: Envelope[] = [
      { id: uuidv4(), ts: Date.now(), type, key, event: { type: RESUME_EVENT_TYPE } },
      ...records.map(({ record, body }) => ({ id: `${body.id}~resume~${record.position}`, ts: body.ts, type, key, event: body.event })),
    ];
    await this.producer.enqueue(p, envs);
    for (const { record } of records) await this.deadLetterStore.remove(this.keys[p]!, record.position);
    return { redelivered: records.length };
  }

  async resumePartition(partition: number): Promise<boolean> {
    this.ensureOpen();
    if (partition === undefined) throw new InvalidOptionError('resumePartition(partition)', `a partition number from 0 to ${this.cfg.partitions - 1}`, partition);
    const p = intOption('partition', partition, 0, 0, this.cfg.partitions - 1);
    return this.partitionState.resume(this.keys[p]!);
  }

  async pausedPartitions(): Promise<{ partition: number; reason: string }[]> {
    this.ensureOpen();
    const out: { partition: number; reason: string }[] = [];
    for (const keys of this.keys) {
      const reason = await this.partitionState.pausedBecause(keys);
      if (reason !== undefined) out.push({ partition: keys.partition, reason });
    }
    return out;
  }

  async verify(type: string, opts?: VerifyOptions): Promise<VerifyReport> {
    const runner = this.runner(type);
    const { client, journals } = this;
    return verifyType({ client, journals, namespace: this.cfg.namespace, partitions: this.cfg.partitions, runner, checkKey: (key) => this.checkKey(type, key) }, opts);
  }

  async drain(opts: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = intOption('timeoutMs', opts.timeoutMs, 60_000, 1);
    const deadline = Date.now() + timeoutMs;
    let quiet = 0;
    let pending = 0;
    while (Date.now() < deadline) {
      this.ensureOpen();
      pending =
        this.producer.pendingCount + (await this.producer.backlog(this.keys.map((k) => k.partition))) + (await this.outbox.unrelayedMail(this.keys));
      // Twice in a row: mail relayed by a commit becomes new work right after it.
      quiet = pending === 0 ? quiet + 1 : 0;
      if (quiet >= 2) return;
      await sleep(20);
    }
    throw new DrainTimeoutError(pending, timeoutMs);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.passivation);
      clearInterval(this.watchdog);
      clearInterval(this.heartbeat);
      for (const c of [...this.blocking, ...this.idleAskConnections.splice(0)]) c.disconnect();
      const steps: (() => Promise<unknown>)[] = [
        () => Promise.all(this.workers.map((w) => w.close())),
        () => (this.cfg.worker ? this.membership.leave(this.cfg.workerId) : Promise.resolve()),
        () => this.producer.close(),
        () => this.client.quit(),
      ];
      // Each step is guarded, and all share one deadline: with Redis gone, close still ends.
      const deadline = Date.now() + this.cfg.closeTimeoutMs;
      for (const step of steps) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), Math.max(0, deadline - Date.now()))));
        try {
          const result = await Promise.race([step(), timeout]);
          if (result === 'timeout') break;
        } catch {
          /* go on with the next step */
        } finally {
          clearTimeout(timer);
        }
      }
      this.client.disconnect();
    })();
    return this.closing;
  }
}

function encodePosition(positions: string[]): string {
  return positions.join(',');
}

/** What `encodePosition` puts before and after partition `p`'s stream id. */
function positionAround(positions: string[], p: number): [string, string] {
  const head = positions.slice(0, p).join(',');
  const tail = positions.slice(p + 1).join(',');
  return [p > 0 ? `${head},` : '', p < positions.length - 1 ? `,${tail}` : ''];
}

function decodePosition(position: string, partitions: number): string[] {
  const parts = typeof position === 'string' ? position.split(',') : [];
  if (parts.length !== partitions || !parts.every((p) => POSITION_ELEMENT.test(p))) {
    throw new InvalidOptionError('outputs({ from })', `'start', 'now' or a position of this namespace's outputs (${partitions} stream ids, each possibly with /<k>)`, position);
  }
  return parts;
}
