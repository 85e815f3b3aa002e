/**
 * The alerts file (--output): one `fraud.alert` per line, NDJSON, written
 * from the outputs stream so that a restart neither loses nor repeats a line.
 *
 * Next to the file, `<file>.checkpoint` records the namespace's instance id,
 * the outputs position read up to, and the length of the file at that
 * position. Lines are written first (and synced), the checkpoint after (a
 * new file renamed over the old). On open:
 *   - a checkpoint of this namespace instance: the file is cut back to the
 *     recorded length (lines written after the checkpoint are dropped: they
 *     are read again) and reading resumes from the recorded position;
 *   - none, or one of another namespace or Redis (the instance changed): the
 *     file starts empty and reading starts at the beginning of the outputs.
 * `finish()` rewrites the file in a canonical order (event time, account,
 * rule, transactions), so the same input always gives the same bytes,
 * however the run was cut and resumed.
 */
import { promises as fs } from 'node:fs';
import type { FraudAlert } from './rules';

interface Checkpoint {
  version: 1;
  namespace: string;
  instance: string;
  position: string | null;
  bytes: number;
  alerts: number;
}

const canonical = (a: FraudAlert) =>
  JSON.stringify({ type: a.type, accountId: a.accountId, rule: a.rule, txIds: a.txIds, ts: a.ts, score: a.score, detail: a.detail });

const compareAlerts = (a: FraudAlert, b: FraudAlert) =>
  a.ts - b.ts || (a.accountId < b.accountId ? -1 : a.accountId > b.accountId ? 1 : 0) || (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0) || (a.txIds.join() < b.txIds.join() ? -1 : a.txIds.join() > b.txIds.join() ? 1 : 0);

export class AlertFile {
  private pending: string[] = [];
  private position: string | null;
  /** The position in the checkpoint on disk: a flush with nothing new writes nothing. */
  private checkpointed: string | null | undefined;
  private bytes: number;
  private count: number;
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    readonly path: string,
    private readonly handle: fs.FileHandle,
    private readonly identity: { namespace: string; instance: string },
    checkpoint: Checkpoint | undefined,
  ) {
    this.position = checkpoint?.position ?? null;
    this.checkpointed = checkpoint?.position;
    this.bytes = checkpoint?.bytes ?? 0;
    this.count = checkpoint?.alerts ?? 0;
  }

  /** Open (or create) the file for this namespace instance; see the module comment. */
  static async open(path: string, identity: { namespace: string; instance: string }): Promise<AlertFile> {
    const checkpointPath = `${path}.checkpoint`;
    let checkpoint: Checkpoint | undefined;
    try {
      const saved = JSON.parse(await fs.readFile(checkpointPath, 'utf8')) as Checkpoint;
      if (saved.version === 1 && saved.namespace === identity.namespace && saved.instance === identity.instance) checkpoint = saved;
    } catch {
      checkpoint = undefined;
    }
    const handle = await fs.open(path, 'a+');
    try {
      const size = (await handle.stat()).size;
      if (checkpoint && size < checkpoint.bytes) checkpoint = undefined; // the file was cut by someone else: start over
      await handle.truncate(checkpoint?.bytes ?? 0);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return new AlertFile(path, handle, identity, checkpoint);
  }

  /** Where to start reading the outputs: `'start'` or the checkpointed position. */
  get from(): string {
    return this.position ?? 'start';
  }

  /** Alerts in the file (written and pending). */
  get alerts(): number {
    return this.count + this.pending.length;
  }

  /** Queue an alert line; `position` is the outputs position right after it. */
  add(alert: FraudAlert, position: string): void {
    this.pending.push(canonical(alert));
    this.position = position;
  }

  /** Move the position past outputs that are not alerts. */
  skip(position: string): void {
    this.position = position;
  }

  /** Write what is queued, sync it, then record the checkpoint. */
  flush(): Promise<void> {
    this.writing = this.writing.then(() => this.write());
    return this.writing;
  }

  private async write(): Promise<void> {
    const lines = this.pending;
    const position = this.position;
    if (lines.length === 0 && position === this.checkpointed) return;
    this.pending = [];
    if (lines.length > 0) {
      const chunk = Buffer.from(lines.join('\n') + '\n');
      await this.handle.write(chunk, 0, chunk.length, null);
      await this.handle.datasync();
      this.bytes += chunk.length;
      this.count += lines.length;
    }
    const checkpoint: Checkpoint = { version: 1, ...this.identity, position, bytes: this.bytes, alerts: this.count };
    const tmp = `${this.path}.checkpoint.tmp`;
    await fs.writeFile(tmp, JSON.stringify(checkpoint) + '\n');
    await fs.rename(tmp, `${this.path}.checkpoint`);
    this.checkpointed = position;
  }

  /** Flush, then rewrite the file in canonical order (same lines, so the same length and checkpoint). */
  async finish(): Promise<void> {
    await this.flush();
    const text = await fs.readFile(this.path, 'utf8');
    // The lines are canonical already: parsed for the sort keys, written back as they are.
    const lines = text
      .split('\n')
      .filter((l) => l.length > 0)
      .map((line) => ({ line, alert: JSON.parse(line) as FraudAlert }));
    lines.sort((a, b) => compareAlerts(a.alert, b.alert));
    const tmp = `${this.path}.sorted.tmp`;
    const out = lines.map((l) => l.line + '\n').join('');
    const h = await fs.open(tmp, 'w');
    try {
      await h.writeFile(out);
      await h.datasync();
    } finally {
      await h.close();
    }
    await fs.rename(tmp, this.path);
  }

  async close(): Promise<void> {
    await this.writing.catch(() => {});
    await this.handle.close();
  }
}

/** Read an alerts file (NDJSON of fraud.alert). */
export async function readAlerts(path: string): Promise<FraudAlert[]> {
  const text = await fs.readFile(path, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l, i) => {
      try {
        return JSON.parse(l) as FraudAlert;
      } catch (err) {
        throw new Error(`${path} line ${i + 1}: not JSON (${(err as Error).message})`);
      }
    });
}
