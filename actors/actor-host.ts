import type { AnyMachineSnapshot } from 'xstate';
import { actorRef, type JournalStore, type PartitionKeys } from '../persistence';
import { RehydrationError, VersionMismatchError } from './errors';
import type { MachineRunner, ExecutableAction, ReplayedState } from './machine-runner';
import type { TimerTable } from './timers';

/** An actor in memory: its committed (or, inside a step, tentative) state. */
export interface LiveActor {
  readonly type: string;
  readonly key: string;
  readonly ref: string;
  readonly partition: number;
  snapshot: AnyMachineSnapshot;
  /** Durable timers pending. */
  timers: TimerTable;
  /** Events applied = journal length. */
  seq: number;
  /** Seq of the latest stored snapshot (-Infinity: it must be rewritten at the next commit). */
  snapshotSeq: number;
  /** Actions of the initial transition, owed to the first step of a new key. */
  initialActions: ExecutableAction[] | undefined;
  lastUsed: number;
  /** `,"type":…,"key":…,"seq":` of the stored form of this actor's outputs (made once, see StepBuilder.apply). */
  outputHead?: string;
  /** ActorHost's insertion count when this actor was last put at the end of the eviction order. */
  placedAt?: number;
}

/**
 * Keeps hot actors in memory, bounded (least recently used go first) and
 * passivated when idle; rehydrates cold ones from snapshot + journal. Actors
 * are found by their ref (`actorRef(type, key)`): a key has one partition.
 */
export class ActorHost {
  /** In eviction order: least recently used first (approximately, see `get`). */
  private readonly live = new Map<string, LiveActor>();
  /** Insertions at the end of `live` so far. */
  private placed = 0;

  constructor(
    private readonly journals: JournalStore,
    private readonly runners: ReadonlyMap<string, MachineRunner>,
    private readonly maxLiveActors: number,
    private readonly now: () => number = Date.now,
  ) {}

  peek(ref: string): LiveActor | undefined {
    return this.live.get(ref);
  }

  /** The live actor if it is in memory, counted as a use (see `get`); undefined when cold. */
  touch(ref: string): LiveActor | undefined {
    const actor = this.live.get(ref);
    if (!actor) return undefined;
    // Moving an entry to the end costs a delete and an insert: done only once it has drifted into
    // the older half. An entry is evicted only when maxLiveActors entries placed after it are live,
    // so an actor used at least once every maxLiveActors / 2 placements is never evicted.
    if (this.placed - (actor.placedAt ?? 0) >= this.maxLiveActors / 2) {
      this.live.delete(ref);
      this.place(ref, actor);
    }
    actor.lastUsed = this.now();
    return actor;
  }

  /** The live actor, rehydrated first when cold. Throws when its stored state cannot be rebuilt. */
  async get(keys: PartitionKeys, type: string, key: string, ref = actorRef(type, key)): Promise<LiveActor> {
    const hot = this.touch(ref);
    if (hot) return hot;
    const actor = await this.rehydrate(keys, type, key, ref);
    this.place(ref, actor);
    this.evictOverflow();
    actor.lastUsed = this.now();
    return actor;
  }

  /** Load snapshot + journal tail and replay; a key never seen starts in its initial state. */
  async rehydrate(keys: PartitionKeys, type: string, key: string, ref = actorRef(type, key)): Promise<LiveActor> {
    const runner = this.runners.get(type);
    if (!runner) throw new Error(`no machine for actor type '${type}'`);
    const loaded = await this.journals.load(keys, ref);
    let initialActions: ExecutableAction[] | undefined;
    let state: ReplayedState;
    if (loaded.seq === 0 && !loaded.snapshot) {
      const init = runner.initial(key);
      state = { snapshot: init.snapshot, timers: {} };
      initialActions = init.actions;
    } else {
      try {
        state = runner.rehydrate(key, loaded);
      } catch (err) {
        throw err instanceof VersionMismatchError ? err : new RehydrationError(type, key, err);
      }
    }
    return {
      type,
      key,
      ref,
      partition: keys.partition,
      snapshot: state.snapshot,
      timers: state.timers,
      seq: loaded.seq,
      // A snapshot migrated from an older machine version is rewritten, as the current version, by the next commit.
      snapshotSeq: state.migratedFrom === undefined ? (loaded.snapshot?.seq ?? 0) : Number.NEGATIVE_INFINITY,
      initialActions,
      lastUsed: this.now(),
    };
  }

  /** Forget an actor (its in-memory state may be ahead of or behind the store). */
  drop(ref: string): void {
    this.live.delete(ref);
  }

  /** Forget every actor of a partition (lease lost). */
  dropPartition(partition: number): void {
    for (const [ref, a] of [...this.live]) if (a.partition === partition) this.live.delete(ref);
  }

  /** Passivate actors idle longer than their type's idleAfterMs. */
  passivateIdle(): number {
    const t = this.now();
    let n = 0;
    for (const [id, a] of this.live) {
      const idle = this.runners.get(a.type)?.def.idleAfterMs ?? 60_000;
      if (t - a.lastUsed >= idle) {
        this.live.delete(id);
        n++;
      }
    }
    return n;
  }

  get size(): number {
    return this.live.size;
  }

  private place(ref: string, actor: LiveActor): void {
    actor.placedAt = ++this.placed;
    this.live.set(ref, actor);
  }

  private evictOverflow(): void {
    while (this.live.size > this.maxLiveActors) {
      const oldest = this.live.keys().next().value as string;
      this.live.delete(oldest);
    }
  }
}
