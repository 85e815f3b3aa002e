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
}

/**
 * Keeps hot actors in memory, bounded (least recently used go first) and
 * passivated when idle; rehydrates cold ones from snapshot + journal.
 */
export class ActorHost {
  private readonly live = new Map<string, LiveActor>();

  constructor(
    private readonly journals: JournalStore,
    private readonly runners: ReadonlyMap<string, MachineRunner>,
    private readonly maxLiveActors: number,
    private readonly now: () => number = Date.now,
  ) {}

  private id(partition: number, ref: string): string {
    return `${partition}/${ref}`;
  }

  peek(partition: number, type: string, key: string): LiveActor | undefined {
    return this.live.get(this.id(partition, actorRef(type, key)));
  }

  /** The live actor, rehydrated first when cold. Throws when its stored state cannot be rebuilt. */
  async get(keys: PartitionKeys, type: string, key: string): Promise<LiveActor> {
    const ref = actorRef(type, key);
    const id = this.id(keys.partition, ref);
    let actor = this.live.get(id);
    if (actor) {
      this.live.delete(id);
    } else {
      actor = await this.rehydrate(keys, type, key, ref);
    }
    actor.lastUsed = this.now();
    this.live.set(id, actor);
    this.evictOverflow();
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
  drop(partition: number, ref: string): void {
    this.live.delete(this.id(partition, ref));
  }

  /** Forget every actor of a partition (lease lost). */
  dropPartition(partition: number): void {
    const prefix = `${partition}/`;
    for (const id of [...this.live.keys()]) if (id.startsWith(prefix)) this.live.delete(id);
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

  private evictOverflow(): void {
    while (this.live.size > this.maxLiveActors) {
      const oldest = this.live.keys().next().value as string;
      this.live.delete(oldest);
    }
  }
}
