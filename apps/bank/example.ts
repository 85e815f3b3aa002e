/**
 * The bank example: a small end-to-end run of keyflow with the `account`
 * actor. Opens a handful of accounts, streams deposits, withdrawals (some
 * refused) and transfers into them, prints balances and the refusals read from
 * `system.outputs()` as it goes, then checks every balance against its journal.
 *
 * `apps/main.ts` is the command-line entry; this module is the logic.
 */
import { createActorSystem, type ActorState, type ActorSystem, type PositionedOutput, deleteNamespace, NAMESPACE_PATTERN } from '../../index';
import { account, type AccountContext } from './account-machine';
import { mulberry32 } from '../lib/random';
import { c } from '../lib/colors';

export interface BankExampleOptions {
  redisUrl: string;
  /** Number of accounts. @default 6 */
  accounts: number;
  /** Events streamed after the opening deposits. @default 2000 */
  events: number;
  /** Events sent per second. @default 150 */
  rate: number;
  /** Seed of the workload's random choices (same seed, same workload). @default 1 */
  seed: number;
  /** Keep the namespace's data in Redis at the end (it is deleted otherwise). @default false */
  keep: boolean;
  /** Print every refused withdrawal, not only the first few of each second. @default false */
  verbose: boolean;
  /** Namespace to use. @default `bank-demo-<random>` (a fresh one per run) */
  namespace?: string;
  /** Aborting stops the run: the system is closed and the run resolves 130 (SIGINT) or 143 (SIGTERM). */
  signal?: AbortSignal;
}

export const DEFAULTS = { accounts: 6, events: 2_000, rate: 150, seed: 1 } as const;

export const USAGE = `usage: npm start [-- apps/main.ts [options]]
       node --import tsx apps/main.ts [options]        (REDIS_URL defaults to redis://127.0.0.1:6379)

The bank example: persistent keyed XState actors on Redis with exactly-once commits.

options:
  --accounts N   accounts to open (2..500, default ${DEFAULTS.accounts})
  --events N     events to stream after the opening deposits (default ${DEFAULTS.events})
  --rate N       events sent per second (default ${DEFAULTS.rate})
  --seed N       seed of the random workload (default ${DEFAULTS.seed})
  --namespace S  namespace to use (default: a fresh bank-demo-<random>)
  --keep         keep the namespace's data in Redis at the end
  --verbose      print every refused withdrawal
  --help         this text`;

/** Thrown by parseBankArgs on a bad command line; the message says what is wrong. */
export class UsageError extends Error {}

/** Parse the command line; `undefined` means `--help` was asked for. */
export function parseBankArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): BankExampleOptions | undefined {
  const opts: BankExampleOptions = {
    redisUrl: env.REDIS_URL || 'redis://127.0.0.1:6379',
    ...DEFAULTS,
    keep: false,
    verbose: false,
  };
  const ints: Record<string, { key: 'accounts' | 'events' | 'rate' | 'seed'; min: number; max: number }> = {
    '--accounts': { key: 'accounts', min: 2, max: 500 },
    '--events': { key: 'events', min: 0, max: 10_000_000 },
    '--rate': { key: 'rate', min: 1, max: 1_000_000 },
    '--seed': { key: 'seed', min: 0, max: 2 ** 31 - 1 },
  };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const eq = raw.indexOf('=');
    const flag = raw.startsWith('--') && eq > 0 ? raw.slice(0, eq) : raw;
    const inline = raw.startsWith('--') && eq > 0 ? raw.slice(eq + 1) : undefined;
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === '--help' || flag === '-h') return undefined;
    if (flag === '--keep') opts.keep = true;
    else if (flag === '--verbose') opts.verbose = true;
    else if (flag === '--namespace') {
      const ns = value();
      if (!NAMESPACE_PATTERN.test(ns)) throw new UsageError(`--namespace: expected [a-z][a-z0-9_-]* (at most 64 characters), received ${JSON.stringify(ns)}`);
      opts.namespace = ns;
    } else if (ints[flag]) {
      const { key, min, max } = ints[flag]!;
      const v = value();
      const n = Number(v);
      if (!/^\d+$/.test(v) || n < min || n > max) throw new UsageError(`${flag}: expected an integer from ${min} to ${max}, received ${JSON.stringify(v)}`);
      opts[key] = n;
    } else {
      throw new UsageError(`unknown option ${JSON.stringify(raw)}`);
    }
  }
  return opts;
}

// ---------------------------------------------------------------------------
// Presentation

const OK = c.green('✓');
const FAIL = c.red('✗');

const num = (n: number) => n.toLocaleString('en-US');
const signed = (n: number) => (n > 0 ? `+${num(n)}` : n < 0 ? `−${num(-n)}` : '0');
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;
const padL = (s: string, w: number) => ' '.repeat(Math.max(0, w - visible(s))) + s;
const padR = (s: string, w: number) => s + ' '.repeat(Math.max(0, w - visible(s)));

function table(header: string[], rows: string[][], alignLeft = new Set([0])): string[] {
  const widths = header.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ''))));
  const line = (cells: string[]) => '  ' + cells.map((cell, i) => (alignLeft.has(i) ? padR(cell, widths[i]!) : padL(cell, widths[i]!))).join('   ');
  return [c.dim(line(header)), ...rows.map(line)];
}

/** Set once a run is interrupted: the work still winding down in the background prints nothing more. */
let muted = false;
const out = (line = '') => {
  if (!muted) process.stdout.write(line + '\n');
};

// ---------------------------------------------------------------------------
// Workload

const NAMES = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory', 'niaj'];
const accountName = (i: number) => NAMES[i] ?? `acct-${i + 1}`;

type BankEvent = { type: 'deposit'; amount: number } | { type: 'withdraw'; amount: number } | { type: 'transfer'; to: string; amount: number };

interface Sent {
  key: string;
  id: string;
  event: BankEvent;
}

const OPENING_DEPOSIT = 100;
/** Accounts shown in tables; the rest are summarized. */
const MAX_ROWS = 12;
const RESEND_PROBABILITY = 0.03;

function makeWorkload(names: string[], events: number, seed: number): { sends: Sent[]; resend: Set<number> } {
  const rand = mulberry32(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  const amount = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const sends: Sent[] = [];
  const resend = new Set<number>();
  for (let n = 0; n < events; n++) {
    const key = pick(names);
    const r = rand();
    let event: BankEvent;
    if (r < 0.45) event = { type: 'deposit', amount: amount(10, 200) };
    else if (r < 0.75) event = { type: 'withdraw', amount: amount(20, 360) };
    else event = { type: 'transfer', to: pick(names.filter((x) => x !== key)), amount: amount(10, 180) };
    sends.push({ key, id: `ev-${String(n + 1).padStart(6, '0')}`, event });
    if (rand() < RESEND_PROBABILITY) resend.add(n);
  }
  return { sends, resend };
}

// ---------------------------------------------------------------------------
// Verification: recompute each account from its journal, independently of the machine

interface Ledger {
  balance: number;
  deposits: number;
  withdrawals: number;
  transfersOut: number;
  transfersIn: number;
  transfersInCount: number;
  transfersOutCount: number;
  refusedWithdrawals: string[];
  ignoredTransfers: number;
  applied: number;
}

function ledgerOf(entries: { event: Record<string, unknown> }[]): Ledger {
  const l: Ledger = { balance: 0, deposits: 0, withdrawals: 0, transfersOut: 0, transfersIn: 0, transfersInCount: 0, transfersOutCount: 0, refusedWithdrawals: [], ignoredTransfers: 0, applied: 0 };
  for (const { event } of entries) {
    const amount = Number(event.amount);
    if (event.type === 'deposit') {
      l.balance += amount;
      l.applied++;
      if (typeof event.from === 'string') {
        l.transfersIn += amount;
        l.transfersInCount++;
      } else l.deposits += amount;
    } else if (event.type === 'withdraw') {
      if (amount <= l.balance) {
        l.balance -= amount;
        l.withdrawals += amount;
        l.applied++;
      } else l.refusedWithdrawals.push(String(event.id));
    } else if (event.type === 'transfer') {
      if (amount <= l.balance) {
        l.balance -= amount;
        l.transfersOut += amount;
        l.transfersOutCount++;
        l.applied++;
      } else l.ignoredTransfers++;
    }
  }
  return l;
}

// ---------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class Interrupted extends Error {}

/** Run the example; resolves the process exit code (0: every check passed). */
export async function runBankExample(opts: BankExampleOptions): Promise<number> {
  const started = Date.now();
  const names = Array.from({ length: opts.accounts }, (_, i) => accountName(i));
  const namespace = opts.namespace ?? `bank-demo-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const { sends, resend } = makeWorkload(names, opts.events, opts.seed);
  const shownUrl = opts.redisUrl.replace(/\/\/[^@/]*@/, '//***@');

  out(c.bold('keyflow · bank example'));
  out(c.dim('Each account is a persistent XState actor (apps/bank/account-machine.ts), keyed by its name.'));
  out(c.dim('For every event keyflow'));
  out(c.dim('  1. enqueues it durably in Redis: one BullMQ queue per partition; send() resolves once Redis holds it;'));
  out(c.dim('  2. lets the one worker holding the partition\'s lease apply it to the live actor, in send order;'));
  out(c.dim('  3. commits the step with one Lua script, all or nothing: journal entry, a snapshot every 20 events,'));
  out(c.dim('     outputs (emit), transfer mail to the other account, and the event id for de-duplication.'));
  out(c.dim('An event delivered or sent twice finds its id recorded and changes nothing: exactly-once.'));
  out();
  out(`  redis       ${shownUrl}`);
  out(`  namespace   ${namespace} ${c.dim(`(16 partitions; ${opts.keep ? 'kept at the end' : 'deleted at the end, --keep keeps it'})`)}`);
  out(
    `  workload    ${num(opts.events)} events to ${opts.accounts} accounts at ${num(opts.rate)}/s (≈${secs((opts.events / opts.rate) * 1000)}), seed ${opts.seed}: ` +
      `45% deposits, 30% withdrawals, 25% transfers;`,
  );
  out(`              ${num(resend.size)} of them sent twice with the same id, as a producer retrying after a timeout would`);
  out();

  let system: ActorSystem | undefined;
  let interruptedBy: string | undefined;
  const aborted = new Promise<'aborted'>((resolve) => {
    const onAbort = () => {
      interruptedBy = String(opts.signal?.reason ?? 'SIGINT');
      resolve('aborted');
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
  const checkpoint = () => {
    if (interruptedBy) throw new Interrupted();
  };

  const warnings: string[] = [];
  const rejected: PositionedOutput[] = [];
  let lastPosition: string | undefined;
  let outputsDone: Promise<void> = Promise.resolve();

  const main = async (): Promise<number> => {
    system = await createActorSystem({ redis: opts.redisUrl, namespace, actors: [account] });
    const sys = system;
    sys.events.on('error', (err, ctx) => warnings.push(`worker error${ctx.partition !== undefined ? ` (partition ${ctx.partition})` : ''}: ${err.message}`));
    sys.events.on('leaseLost', (i) => warnings.push(`lease of partition ${i.partition} lost (epoch ${i.epoch}): ${i.reason}`));
    sys.events.on('deadLettered', (i) => warnings.push(`event ${i.eventId} of ${i.key} dead-lettered after ${i.attempts} attempts: ${i.error.message}`));

    // Outputs: every emit() of every actor, exactly once, in commit order per key.
    const pendingRejections: PositionedOutput[] = [];
    outputsDone = (async () => {
      try {
        for await (const o of sys.outputs({ from: 'start' })) {
          lastPosition = o.position;
          if (o.event.type === 'withdrawal.rejected') {
            rejected.push(o);
            pendingRejections.push(o);
          }
        }
      } catch (err) {
        if (!interruptedBy) warnings.push(`outputs reader stopped: ${(err as Error).message}`);
      }
    })();

    const leaseDeadline = Date.now() + 5_000;
    while (sys.ownedPartitions().length < sys.partitions && Date.now() < leaseDeadline) await sleep(20);
    out(`${c.cyan('①')} ${c.bold('open the accounts')} ${c.dim('— sendMany: one write per partition, atomic within a partition')}`);
    out(`  this worker holds the leases of ${sys.ownedPartitions().length}/${sys.partitions} partitions (another worker process on this namespace would take them over if this one died)`);
    const opening = await sys.sendMany(names.map((key) => ({ type: 'account', key, event: { type: 'deposit', amount: OPENING_DEPOSIT }, id: `open-${key}` })));
    out(`  ${opening.ids.length} opening deposits of ${OPENING_DEPOSIT} enqueued, ids ${opening.ids[0]} … ${opening.ids[opening.ids.length - 1]}`);
    checkpoint();

    // Idempotency: the same deposit again, twice, under its id.
    const first = names[0]!;
    const bonusId = `open-${first}`;
    out();
    out(`${c.cyan('②')} ${c.bold('idempotency')} ${c.dim(`— the opening deposit of ${first} again, under the same id "${bonusId}"`)}`);
    await sys.send('account', first, { type: 'deposit', amount: OPENING_DEPOSIT }, { id: bonusId });
    out(`  send(account, ${first}, deposit ${OPENING_DEPOSIT}, { id: "${bonusId}" })   ${c.dim('→ enqueued (a retry of the first send)')}`);
    const asked = await sys.ask('account', first, { type: 'deposit', amount: OPENING_DEPOSIT }, { id: bonusId });
    out(`  ask (account, ${first}, deposit ${OPENING_DEPOSIT}, { id: "${bonusId}" })   ${c.dim('→ a duplicate: answered with the current state')}`);
    const firstJournal = await sys.journal('account', first);
    const withId = firstJournal.filter((e) => e.id === bonusId).length;
    const bal = (asked.context as unknown as AccountContext).balance;
    const idemOk = withId === 1 && bal === OPENING_DEPOSIT && asked.seq === 1;
    out(
      `  ${idemOk ? OK : FAIL} sent 3 times, applied once: ${first}'s balance is ${num(bal)} (not ${num(3 * OPENING_DEPOSIT)}), seq ${asked.seq}, ` +
        `${withId} journal entry with id "${bonusId}"`,
    );
    checkpoint();

    // The stream.
    out();
    out(`${c.cyan('③')} ${c.bold('stream')} ${c.dim(`— ${num(opts.events)} events at ${num(opts.rate)}/s; concurrent sends to one partition share one BullMQ job`)}`);
    const inflight = new Set<Promise<unknown>>();
    const sendErrors: string[] = [];
    let sent = 0;
    let resent = 0;
    const resendQueue: { due: number; s: Sent }[] = [];
    const track = (p: Promise<unknown>) => {
      const q = p.catch((err: Error) => {
        if (!interruptedBy) sendErrors.push(err.message);
      });
      inflight.add(q);
      void q.finally(() => inflight.delete(q));
    };
    const streamStart = Date.now();
    let nextTick = streamStart + 1_000;

    const printTick = async (final: boolean) => {
      const states = await Promise.all(names.map((k) => sys.get('account', k)));
      const journaled = states.reduce((s, st) => s + (st?.seq ?? 0), 0);
      const elapsed = Date.now() - streamStart;
      const refusedSoFar = states.reduce((s, st) => s + ((st?.context as unknown as AccountContext | undefined)?.rejected ?? 0), 0);
      out();
      out(
        c.bold(`  ── ${secs(elapsed)}${final ? ' (all sent)' : ''}`) +
          c.dim(` ── sent ${num(sent)}/${num(opts.events)} (+${resent} re-sent) · journaled ${num(journaled)} · refused ${refusedSoFar} · outputs read ${rejected.length}`),
      );
      const rows = names.slice(0, MAX_ROWS).map((k, i) => {
        const ctx = states[i]?.context as unknown as AccountContext | undefined;
        return [k, num(ctx?.balance ?? 0), num(states[i]?.seq ?? 0), num(ctx?.applied ?? 0), num(ctx?.rejected ?? 0)];
      });
      for (const line of table(['account', 'balance', 'journal', 'applied', 'refused'], rows)) out(line);
      if (names.length > MAX_ROWS) out(c.dim(`  … and ${names.length - MAX_ROWS} more accounts`));
      const shown = opts.verbose ? pendingRejections.length : Math.min(4, pendingRejections.length);
      for (const o of pendingRejections.slice(0, shown)) {
        const e = o.event as { account: string; amount: number; balance: number; eventId: string };
        out(`  ${c.yellow('↳ withdrawal.rejected')}  ${padR(e.account, 8)} wanted ${padL(num(e.amount), 4)}, had ${padL(num(e.balance), 5)}  ${c.dim(`(event ${e.eventId}, seq ${o.seq})`)}`);
      }
      if (pendingRejections.length > shown) out(c.dim(`  ↳ … and ${pendingRejections.length - shown} more withdrawal.rejected outputs (--verbose prints them all)`));
      pendingRejections.length = 0;
    };

    while (sent < sends.length || resendQueue.length > 0) {
      checkpoint();
      const now = Date.now();
      const due = Math.min(sends.length, Math.floor(((now - streamStart) / 1000) * opts.rate) + 1);
      for (; sent < due; sent++) {
        const s = sends[sent]!;
        track(sys.send('account', s.key, s.event, { id: s.id }));
        if (resend.has(sent)) resendQueue.push({ due: now + 300 + (sent % 7) * 100, s });
      }
      while (resendQueue.length > 0 && resendQueue[0]!.due <= now) {
        const { s } = resendQueue.shift()!;
        track(sys.send('account', s.key, s.event, { id: s.id }));
        resent++;
      }
      if (now >= nextTick) {
        nextTick += 1_000;
        await printTick(false);
      }
      await sleep(10);
    }
    await Promise.all(inflight);
    checkpoint();
    await printTick(true);

    // Verification.
    out();
    out(`${c.cyan('④')} ${c.bold('verify')} ${c.dim('— drain(), then read everything back from Redis')}`);
    const drainStart = Date.now();
    await sys.drain({ timeoutMs: 60_000 });
    // Settle: nothing in flight means the journals stop growing.
    let previous = -1;
    for (;;) {
      const total = (await Promise.all(names.map((k) => sys.get('account', k)))).reduce((s, st) => s + (st?.seq ?? 0), 0);
      if (total === previous) break;
      previous = total;
      await sleep(100);
    }
    checkpoint();
    const states = (await Promise.all(names.map((k) => sys.get('account', k)))) as ActorState[];
    const contexts = states.map((s) => s.context as unknown as AccountContext);
    const refusedTotal = contexts.reduce((s, ctx) => s + ctx.rejected, 0);
    const outDeadline = Date.now() + 10_000;
    while (rejected.length < refusedTotal && Date.now() < outDeadline) await sleep(20);
    out(c.dim(`  drained in ${secs(Date.now() - drainStart)}: every enqueued event is committed`));

    const journals = await Promise.all(names.map((k) => sys.journal('account', k)));
    const replays = await Promise.all(names.map((k, i) => sys.replay('account', k, { toSeq: states[i]!.seq })));
    const ledgers = journals.map((j) => ledgerOf(j));

    const checks: { ok: boolean; text: string }[] = [];
    const rows: string[][] = [];
    let balanceOk = true;
    let replayOk = true;
    let contiguousOk = true;
    const hiddenFailures: string[] = [];
    names.forEach((key, i) => {
      const st = states[i]!;
      const ctx = contexts[i]!;
      const l = ledgers[i]!;
      const bOk = l.balance === ctx.balance && l.applied === ctx.applied && l.refusedWithdrawals.length === ctx.rejected;
      const r = replays[i];
      const rOk = r !== undefined && JSON.stringify([r.value, r.context, r.status, r.seq]) === JSON.stringify([st.value, st.context, st.status, st.seq]);
      const cOk = journals[i]!.length === st.seq && journals[i]!.every((e, n) => e.seq === n + 1);
      balanceOk &&= bOk;
      replayOk &&= rOk;
      contiguousOk &&= cOk;
      if (i >= MAX_ROWS) {
        if (!(bOk && rOk && cOk)) hiddenFailures.push(key);
        return;
      }
      rows.push([
        key,
        num(ctx.balance),
        signed(l.deposits),
        signed(-l.withdrawals),
        signed(l.transfersIn),
        signed(-l.transfersOut),
        `${num(l.balance)} ${bOk ? OK : FAIL}`,
        num(st.seq),
        String(ctx.rejected),
        rOk ? OK : FAIL,
      ]);
    });
    out(c.dim('  system.get gives the balance; the next five columns are recomputed from system.journal alone'));
    for (const line of table(['account', 'balance', 'deposits', 'withdrawn', 'transfer in', 'transfer out', '= Σ journal', 'seq', 'refused', 'replay = get'], rows)) out(line);
    if (names.length > MAX_ROWS) {
      out(c.dim(`  … and ${names.length - MAX_ROWS} more accounts: `) + (hiddenFailures.length === 0 ? `${OK} all` : `${FAIL} ${hiddenFailures.join(', ')}`));
    }

    checks.push({ ok: balanceOk, text: `every balance equals the sum of its applied events, recomputed from system.journal (${names.length} accounts)` });
    checks.push({ ok: replayOk, text: 'system.replay({ toSeq: seq }) from scratch equals system.get (snapshot + journal tail) for every account' });
    checks.push({ ok: contiguousOk, text: 'journal sequence numbers are contiguous from 1 and match each seq' });

    // Every id sent is journaled exactly once by its target account.
    const seen = new Map<string, number>();
    journals.forEach((j, i) => j.forEach((e) => seen.set(`${names[i]}|${e.id}`, (seen.get(`${names[i]}|${e.id}`) ?? 0) + 1)));
    const expected = [...names.map((k) => `${k}|open-${k}`), ...sends.map((s) => `${s.key}|${s.id}`)];
    const once = expected.filter((m) => seen.get(m) === 1).length;
    checks.push({
      ok: once === expected.length,
      text: `each of the ${num(expected.length)} ids sent is in its account's journal exactly once (${resent + 2} duplicate sends changed nothing)`,
    });

    const outCount = ledgers.reduce((s, l) => s + l.transfersOutCount, 0);
    const inCount = ledgers.reduce((s, l) => s + l.transfersInCount, 0);
    const outSum = ledgers.reduce((s, l) => s + l.transfersOut, 0);
    const inSum = ledgers.reduce((s, l) => s + l.transfersIn, 0);
    const ignored = ledgers.reduce((s, l) => s + l.ignoredTransfers, 0);
    checks.push({
      ok: outCount === inCount && outSum === inSum,
      text: `${num(outCount)} transfers debited (${num(outSum)}) = ${num(inCount)} credited (${num(inSum)}): actor-to-actor mail delivered exactly once (${ignored} uncovered transfers ignored)`,
    });

    const refusedIds = new Set(ledgers.flatMap((l, i) => l.refusedWithdrawals.map((id) => `${names[i]}|${id}`)));
    const outputIds = rejected.map((o) => `${o.key}|${String((o.event as { eventId?: unknown }).eventId)}`);
    const outputsOk = outputIds.length === refusedIds.size && new Set(outputIds).size === outputIds.length && outputIds.every((m) => refusedIds.has(m));
    checks.push({ ok: outputsOk, text: `${num(rejected.length)} withdrawal.rejected outputs read from system.outputs() = ${num(refusedIds.size)} refusals in the journals, one each` });

    const totalBalance = contexts.reduce((s, ctx) => s + ctx.balance, 0);
    const deposited = ledgers.reduce((s, l) => s + l.deposits, 0);
    const withdrawn = ledgers.reduce((s, l) => s + l.withdrawals, 0);
    checks.push({ ok: totalBalance === deposited - withdrawn, text: `money is conserved: Σ balances ${num(totalBalance)} = deposits ${num(deposited)} − withdrawals ${num(withdrawn)}` });

    const deadLetters = await sys.deadLetters().list();
    checks.push({ ok: deadLetters.length === 0, text: `no dead letters (${deadLetters.length})` });
    if (sendErrors.length > 0) checks.push({ ok: false, text: `${sendErrors.length} sends failed, e.g. ${sendErrors[0]}` });

    out();
    for (const ch of checks) out(`  ${ch.ok ? OK : FAIL} ${ch.text}`);

    // Time travel: the first account as it was along the way.
    const seq = states[0]!.seq;
    const points = [...new Set([1, Math.ceil(seq / 4), Math.ceil(seq / 2), Math.ceil((3 * seq) / 4)])].filter((n) => n >= 1 && n < seq);
    const past = await Promise.all(points.map((n) => sys.replay('account', first, { toSeq: n })));
    if (points.length > 0) out(
      `  ${c.dim('time travel (system.replay):')} ${first} after event ` +
        points.map((n, i) => `${n} → ${num((past[i]?.context as unknown as AccountContext | undefined)?.balance ?? 0)}`).join(', ') +
        `, now (${seq}) → ${num(contexts[0]!.balance)}`,
    );
    if (lastPosition) {
      const shown = lastPosition.length > 48 ? `${lastPosition.slice(0, 45)}…` : lastPosition;
      out(`  ${c.dim(`resume the outputs after the last one read: outputs({ from: '${shown}' })  (one stream id per partition)`)}`);
    }

    for (const w of warnings.slice(0, 5)) out(`  ${c.yellow('!')} ${w}`);
    if (warnings.length > 5) out(c.dim(`  ! … and ${warnings.length - 5} more warnings`));
    const allOk = checks.every((ch) => ch.ok) && idemOk;
    return allOk ? 0 : 1;
  };

  /** Close the system (stop taking work, finish the step in hand, release the leases), then delete the namespace. */
  const closeAndClean = async (say: (line: string) => void) => {
    const sys = system as ActorSystem | undefined;
    if (sys) {
      await sys.close();
      await outputsDone;
    }
    if (!opts.keep) {
      try {
        const n = await deleteNamespace(opts.redisUrl, namespace);
        if (sys) say(c.dim(`  system closed; namespace ${namespace} deleted (${num(n)} Redis keys)`));
      } catch (err) {
        process.stderr.write(`could not delete namespace ${namespace}: ${(err as Error).message}\n`);
      }
    } else if (sys) {
      say(c.dim(`  system closed; namespace ${namespace} kept: its journals, snapshots and outboxes are under {${namespace}:<partition>}:*`));
    }
  };

  let failure: unknown;
  const run = main().catch((err: unknown) => {
    if (err instanceof Interrupted) return -1;
    failure = err;
    return 1;
  });
  const result = await Promise.race([run, aborted]);
  if (result === 'aborted' || result === -1) {
    out();
    muted = true;
    const say = (line: string) => process.stdout.write(line + '\n');
    say(c.yellow(`${interruptedBy ?? 'interrupted'}: closing the actor system — stop taking work, finish the step in hand, release the leases`));
    await closeAndClean(say);
    return interruptedBy === 'SIGTERM' ? 143 : 130;
  }
  if (failure) process.stderr.write(`${c.red('error:')} ${failure instanceof Error ? failure.message : String(failure)}\n`);
  await closeAndClean(out);
  if (result === 0) out(c.green(`  all checks passed in ${secs(Date.now() - started)}`));
  else out(c.red(`  ${failure ? 'failed' : 'some checks failed'} (${secs(Date.now() - started)})`));
  return result;
}
