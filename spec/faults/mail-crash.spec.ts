/**
 * Actor-to-actor mail exactly once under kill -9. Accounts transfer money to
 * each other (a transfer that the balance covers debits the sender and mails
 * a deposit to the receiver, committed with the debit and relayed afterwards)
 * while the worker process is killed at random moments and replaced. A mail
 * lost between the commit and the relay would destroy money; a mail relayed
 * twice and applied twice would create it.
 *
 * Afterwards: the total balance is what was deposited from outside; each
 * account's mail deposits are exactly the covered transfers addressed to it
 * (sender and amount, as a multiset), found by walking each sender's journal;
 * every external event is in its account's journal once, in send order; seqs
 * are contiguous; and every account's state equals the replay of its journal.
 */
import { isDeepStrictEqual } from 'node:util';
import { createActorSystem, type ActorSystem, type JournalEntry } from '../../index';
import { account } from '../../apps/bank/account-machine';
import { rng } from '../helpers/random';
import { cleanupNamespace, redisUrl, uniqueNamespace } from '../helpers/redis';
import { sleep } from '../helpers/time';
import { BankWorkers } from './fixtures/worker-proc';

const ACCOUNTS = 20;
const OPENING = 1_000;
const TRANSFERS = 1_500;
const CHUNK = 50;
const KILLS = 6;

interface External {
  key: string;
  id: string;
  event: { type: 'deposit'; amount: number } | { type: 'transfer'; to: string; amount: number };
}

describe('faults: actor-to-actor mail under kill -9', () => {
  const ns = uniqueNamespace('mailcrash');
  let producer: ActorSystem;
  const workers = new BankWorkers({ redisUrl: redisUrl(), namespace: ns, partitions: 4, leaseTtlMs: 1_000 });
  let passed = false;

  afterAll(async () => {
    await workers.close(passed, 'mail-crash');
    await producer?.close();
    await cleanupNamespace(redisUrl(), ns);
  });

  it('relays every committed mail once: money is conserved and each deposit matches one covered transfer', async () => {
    const random = rng(20261121);
    producer = await createActorSystem({ redis: redisUrl(), namespace: ns, partitions: 4, actors: [account], worker: false });
    let worker = workers.start();
    await worker.ready(20_000);

    const keys = Array.from({ length: ACCOUNTS }, (_, i) => `acct-${i}`);
    const sent: External[] = keys.map((key, i) => ({ key, id: `open-${i}`, event: { type: 'deposit', amount: OPENING } }));
    for (let i = 0; i < TRANSFERS; i++) {
      const from = Math.floor(random() * ACCOUNTS);
      const to = (from + 1 + Math.floor(random() * (ACCOUNTS - 1))) % ACCOUNTS;
      sent.push({ key: keys[from]!, id: `tx-${i}`, event: { type: 'transfer', to: keys[to]!, amount: 1 + Math.floor(random() * 100) } });
    }
    const chunks = Math.ceil(sent.length / CHUNK);
    const killAt = new Set(Array.from({ length: KILLS }, () => 2 + Math.floor(random() * (chunks - 4))));
    let kills = 0;
    for (let c = 0; c < chunks; c++) {
      await Promise.all(sent.slice(c * CHUNK, (c + 1) * CHUNK).map((s) => producer.send('account', s.key, s.event, { id: s.id })));
      if (killAt.has(c)) {
        // A few milliseconds into the chunk's processing: commits with mail in flight, relays pending.
        await sleep(Math.floor(random() * 30));
        worker = await workers.replace(worker);
        kills++;
      } else {
        await sleep(10);
      }
    }
    await producer.drain({ timeoutMs: 60_000 });

    const problems: string[] = [];
    const problem = (s: string) => {
      if (problems.length < 20) problems.push(s);
    };
    const journals = new Map<string, JournalEntry[]>();
    for (const key of keys) journals.set(key, await producer.journal('account', key));

    // Walk each journal as the machine does: which transfers were covered (each one mail).
    const mailed = new Map<string, string[]>(); // receiver -> "sender:amount" of each covered transfer
    const received = new Map<string, string[]>(); // receiver -> "sender:amount" of each mail deposit applied
    let total = 0;
    let covered = 0;
    for (const key of keys) {
      const entries = journals.get(key)!;
      entries.forEach((e, i) => {
        if (e.seq !== i + 1) problem(`${key}: entry ${i} has seq ${e.seq}`);
      });
      let balance = 0;
      for (const e of entries) {
        const ev = e.event as { type: string; amount: number; to?: string; from?: string };
        if (ev.type === 'deposit') {
          balance += ev.amount;
          if (ev.from !== undefined) received.set(key, [...(received.get(key) ?? []), `${ev.from}:${ev.amount}`]);
        } else if (ev.type === 'transfer' && ev.amount <= balance) {
          balance -= ev.amount;
          covered++;
          mailed.set(ev.to!, [...(mailed.get(ev.to!) ?? []), `${key}:${ev.amount}`]);
        }
      }
      const state = await producer.get('account', key);
      if (state?.context.balance !== balance) problem(`${key}: balance ${String(state?.context.balance)}, its journal walked gives ${balance}`);
      if (state?.seq !== entries.length) problem(`${key}: seq ${String(state?.seq)}, journal length ${entries.length}`);
      const replayed = await producer.replay('account', key, { toSeq: entries.length });
      if (!isDeepStrictEqual(replayed?.context, state?.context)) problem(`${key}: state differs from the replay of its journal`);
      total += balance;
      // External events: each once, in send order.
      const externalIds = sent.filter((s) => s.key === key).map((s) => s.id);
      const journaledIds = entries.map((e) => e.id).filter((id) => id.startsWith('open-') || id.startsWith('tx-'));
      if (!isDeepStrictEqual(journaledIds, externalIds)) problem(`${key}: external events journaled ${journaledIds.length} (expected ${externalIds.length}), in order: ${isDeepStrictEqual(journaledIds, externalIds)}`);
    }
    let mailMismatches = 0;
    for (const key of keys) {
      const want = [...(mailed.get(key) ?? [])].sort();
      const got = [...(received.get(key) ?? [])].sort();
      if (!isDeepStrictEqual(want, got)) {
        mailMismatches++;
        problem(`${key}: ${got.length} mail deposits applied, ${want.length} covered transfers addressed to it`);
      }
    }
    const deposits = [...received.values()].reduce((n, l) => n + l.length, 0);
    const epochs = workers.acquisitions();
    process.stdout.write(
      `mail-crash: accounts=${ACCOUNTS} transfers=${TRANSFERS} covered=${covered} mail-deposits=${deposits} kills=${kills} lease-acquisitions=${epochs} total=${total} expected-total=${ACCOUNTS * OPENING} mismatched-accounts=${mailMismatches}\n`,
    );
    expect(problems).toEqual([]);
    expect(total).toBe(ACCOUNTS * OPENING);
    expect(deposits).toBe(covered);
    // The workload must exercise mail (how many transfers are covered depends on the interleaving), and the kills happened.
    expect(covered).toBeGreaterThan(TRANSFERS / 3);
    expect(kills).toBe(killAt.size);
    expect(kills).toBeGreaterThanOrEqual(3);
    passed = true;
  }, 180_000);
});
