import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { WORKER_NODE_FLAGS } from '../../index';

/**
 * The service's supervisor of worker processes: it spawns `workers` child
 * processes (worker.ts), each an actor system on the namespace, follows the
 * leases they report, and restarts a worker that exits — killed from the page,
 * crashed, or OOM-killed. A worker that keeps dying is restarted with a
 * growing delay (up to 10 s) instead of in a tight loop.
 *
 * While a killed worker is down, its partitions wait until their leases expire
 * (`leaseTtlMs`); then the surviving workers take them over and rebuild each
 * actor from snapshot + journal on its next event. When the new worker joins,
 * the membership gives it its share back (a graceful hand-over).
 */

export type WorkerState = 'starting' | 'running' | 'down';

export interface WorkerInfo {
  /** Stable position of the worker in the pool (0-based); the kill endpoint takes it. */
  slot: number;
  /** Incremented at every restart of the slot. */
  generation: number;
  pid: number | null;
  /** The keyflow worker id it reported. */
  workerId: string | null;
  state: WorkerState;
  /** Partitions whose lease it reported holding, sorted. */
  partitions: number[];
  restarts: number;
  startedAt: number;
  lastExit: { code: number | null; signal: string | null; at: number; killed: boolean } | null;
}

/** What the pool reports (also sent to the page). */
export type PoolEvent =
  | { type: 'worker.started'; slot: number; pid: number; generation: number }
  | { type: 'worker.ready'; slot: number; pid: number; workerId: string }
  | { type: 'worker.killed'; slot: number; pid: number }
  | { type: 'worker.exited'; slot: number; pid: number; code: number | null; signal: string | null; restartInMs: number | null }
  | { type: 'lease.acquired'; slot: number; partition: number; epoch: number }
  | { type: 'lease.lost'; slot: number; partition: number; epoch: number; reason: string }
  | { type: 'worker.error'; slot: number; message: string };

export interface WorkerPoolOptions {
  redisUrl: string;
  namespace: string;
  partitions: number;
  workers: number;
  leaseTtlMs: number;
  /** Delay before a worker that exited is started again. @default 300 */
  restartDelayMs?: number;
  /** The worker script. @default worker.ts next to this file */
  script?: string;
}

interface Slot {
  info: WorkerInfo;
  child: ChildProcess | null;
  held: Set<number>;
  recentExits: number[];
  killRequested: boolean;
  restartTimer: NodeJS.Timeout | null;
}

const ROOT = join(__dirname, '..', '..');

export class WorkerPool extends EventEmitter {
  private readonly slots: Slot[] = [];
  private closing = false;
  private readonly restartDelayMs: number;
  private readonly script: string;

  constructor(private readonly o: WorkerPoolOptions) {
    super();
    this.restartDelayMs = o.restartDelayMs ?? 300;
    this.script = o.script ?? join(__dirname, 'worker.ts');
  }

  override emit(event: 'event', e: PoolEvent): boolean {
    return super.emit(event, e);
  }

  override on(event: 'event', listener: (e: PoolEvent) => void): this {
    return super.on(event, listener);
  }

  start(): void {
    for (let slot = 0; slot < this.o.workers; slot++) {
      this.slots.push({
        info: { slot, generation: 0, pid: null, workerId: null, state: 'starting', partitions: [], restarts: 0, startedAt: Date.now(), lastExit: null },
        child: null,
        held: new Set(),
        recentExits: [],
        killRequested: false,
        restartTimer: null,
      });
      this.spawn(this.slots[slot]!);
    }
  }

  list(): WorkerInfo[] {
    return this.slots.map((s) => ({ ...s.info, partitions: [...s.held].sort((a, b) => a - b), lastExit: s.info.lastExit && { ...s.info.lastExit } }));
  }

  /** Partitions some running worker reports holding. */
  ownedPartitions(): Set<number> {
    const owned = new Set<number>();
    for (const s of this.slots) if (s.info.state !== 'down') for (const p of s.held) owned.add(p);
    return owned;
  }

  /**
   * SIGKILL the worker in `slot` (no goodbye: its leases expire on their own).
   * Returns its pid, or a reason it could not.
   */
  kill(slot: number): { pid: number } | { error: 'no such worker' | 'not running' } {
    const s = this.slots[slot];
    if (!s) return { error: 'no such worker' };
    if (!s.child || s.info.state === 'down' || s.child.exitCode !== null) return { error: 'not running' };
    s.killRequested = true;
    const pid = s.child.pid!;
    s.child.kill('SIGKILL');
    this.emit('event', { type: 'worker.killed', slot, pid });
    return { pid };
  }

  /** SIGTERM every worker (they close their systems: leases released at once), SIGKILL after `timeoutMs`. */
  async close(timeoutMs = 8_000): Promise<void> {
    this.closing = true;
    const exits: Promise<void>[] = [];
    for (const s of this.slots) {
      if (s.restartTimer) clearTimeout(s.restartTimer);
      const child = s.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      exits.push(
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
      );
    }
    await Promise.all(exits);
  }

  private spawn(s: Slot): void {
    const slot = s.info.slot;
    const child = spawn(process.execPath, [...WORKER_NODE_FLAGS, '--import', 'tsx', this.script], {
      cwd: ROOT,
      env: {
        ...process.env,
        REDIS_URL: this.o.redisUrl,
        RM_NAMESPACE: this.o.namespace,
        RM_PARTITIONS: String(this.o.partitions),
        RM_LEASE_TTL_MS: String(this.o.leaseTtlMs),
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    s.child = child;
    s.held.clear();
    s.killRequested = false;
    Object.assign(s.info, { pid: child.pid ?? null, workerId: null, state: 'starting' as const, startedAt: Date.now() });
    this.emit('event', { type: 'worker.started', slot, pid: child.pid ?? -1, generation: s.info.generation });

    createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(s, child, line));
    createInterface({ input: child.stderr! }).on('line', (line) => {
      if (line.trim()) this.emit('event', { type: 'worker.error', slot, message: line });
    });
    child.once('error', (err) => this.emit('event', { type: 'worker.error', slot, message: `could not start: ${err.message}` }));
    child.once('exit', (code, signal) => this.onExit(s, child, code, signal));
  }

  private onLine(s: Slot, child: ChildProcess, line: string): void {
    if (s.child !== child) return;
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const slot = s.info.slot;
    switch (m.event) {
      case 'started':
        s.info.state = 'running';
        s.info.workerId = String(m.workerId);
        this.emit('event', { type: 'worker.ready', slot, pid: child.pid!, workerId: s.info.workerId });
        return;
      case 'lease': {
        const partition = Number(m.partition);
        // A partition moves: whoever held it before (in this pool's view) lost it.
        for (const other of this.slots) if (other !== s) other.held.delete(partition);
        s.held.add(partition);
        this.emit('event', { type: 'lease.acquired', slot, partition, epoch: Number(m.epoch) });
        return;
      }
      case 'lost':
        s.held.delete(Number(m.partition));
        this.emit('event', { type: 'lease.lost', slot, partition: Number(m.partition), epoch: Number(m.epoch), reason: String(m.reason) });
        return;
      case 'error':
      case 'supervision':
        this.emit('event', { type: 'worker.error', slot, message: String(m.message) });
        return;
    }
  }

  private onExit(s: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (s.child !== child) return;
    const now = Date.now();
    s.held.clear();
    s.child = null;
    s.info.state = 'down';
    s.info.lastExit = { code, signal, at: now, killed: s.killRequested };
    let restartInMs: number | null = null;
    if (!this.closing) {
      // A worker that dies on its own again and again is restarted more and more slowly.
      if (!s.killRequested) s.recentExits = [...s.recentExits.filter((t) => now - t < 30_000), now];
      const crashes = s.recentExits.length;
      restartInMs = crashes >= 3 ? Math.min(10_000, this.restartDelayMs * 2 ** (crashes - 2)) : this.restartDelayMs;
      s.restartTimer = setTimeout(() => {
        s.restartTimer = null;
        if (this.closing) return;
        s.info.generation += 1;
        s.info.restarts += 1;
        this.spawn(s);
      }, restartInMs);
    }
    this.emit('event', { type: 'worker.exited', slot: s.info.slot, pid: child.pid ?? -1, code, signal, restartInMs });
  }
}
