/**
 * The programmatic API of the fraud-detection worker: a keyflow actor system
 * with the account actor, plus what the app needs around it.
 *
 *   const detector = await createFraudDetector({ redis: process.env.REDIS_URL!, namespace: 'fraud' });
 *   await detector.submit(transactions);                 // idempotent by transaction id
 *   for await (const { output } of detector.outputs()) { ... }   // fraud.alert, fraud.late, fraud.status
 *   await detector.review('acct-42', 'clear');
 *   await detector.close();
 */
import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { createActorSystem, KeyflowError, type ActorState, type ActorSystem, type ActorSystemOptions, type RedisConfig, type SendManyItem } from '../../index';
import { ACCOUNT_ACTOR_TYPE, accountActor, type AccountContext, type AccountStatus, type FraudOutput, type ReviewEvent } from './account-machine';
import { resolveRules, type RulesConfig, type RulesOverrides } from './config';
import { InvalidTransactionError, toTransaction, type Transaction } from './transaction';

export interface FraudDetectorOptions {
  redis: RedisConfig;
  /** @default 'fraud' */
  namespace?: string;
  /** Fixed for the life of the namespace. @default 16 */
  partitions?: number;
  /** Thresholds (the defaults of config.ts where not given). Fixed for the life of the namespace. */
  rules?: RulesOverrides;
  /** false: submit and read only, no processing in this process. @default true */
  worker?: boolean;
  /** More options of the actor system (leaseTtlMs, maxBatchEvents, ...). */
  system?: Partial<Omit<ActorSystemOptions, 'redis' | 'namespace' | 'partitions' | 'actors' | 'worker'>>;
}

/** A namespace already holds accounts scored with other thresholds: replaying them with these would change history. */
export class RulesMismatchError extends KeyflowError {
  constructor(
    readonly namespace: string,
    readonly stored: RulesConfig,
    readonly given: RulesConfig,
  ) {
    super(
      'RULES_MISMATCH',
      `namespace '${namespace}' was created with other rules (stored: ${JSON.stringify(stored)}); ` +
        'every worker of a namespace must score with the same thresholds: use a new namespace for new thresholds',
    );
  }
}

export interface AccountView {
  accountId: string;
  status: AccountStatus;
  txCount: number;
  alertCount: number;
  lateCount: number;
  lastAlertTs: number | null;
  /** Number of events applied (transactions and reviews). */
  seq: number;
}

export interface PositionedFraudOutput {
  output: FraudOutput;
  /** Deterministic id of the output (the same committed emit always has the same id). */
  id: string;
  /** Resume after this output: `outputs({ from: position })`. */
  position: string;
}

export interface FraudDetector {
  readonly system: ActorSystem;
  readonly rules: RulesConfig;
  readonly namespace: string;
  /**
   * This namespace's identity in this Redis: a fresh Redis (or a deleted
   * namespace) gets a new one, so a saved position is known to be stale.
   */
  readonly instance: string;
  /**
   * Submit transactions (any number; sent in batches of `batchSize`). All are
   * checked first: an invalid one rejects with InvalidTransactionError and
   * nothing is sent. The transaction id is the event id: a re-submitted
   * transaction is applied once.
   */
  submit(transactions: readonly unknown[], opts?: { batchSize?: number }): Promise<void>;
  /** A review decision for an account: `clear` → normal, `block` → blocked. `id` makes it idempotent. */
  review(accountId: string, decision: 'clear' | 'block', opts?: { reviewer?: string; id?: string; ts?: number }): Promise<void>;
  /** The committed state of an account, or undefined if it never had an event. */
  account(accountId: string): Promise<AccountView | undefined>;
  /**
   * The account actor's outputs, exactly once each, from `'start'`, `'now'` or
   * a position; with `until: 'now'`, only up to what is committed at the call.
   */
  outputs(opts?: { from?: string; until?: 'now' }): AsyncIterable<PositionedFraudOutput>;
  /** The position after the newest output so far (a concrete 'now' to start or resume from). */
  outputsPosition(): Promise<string>;
  /** Resolve once everything submitted so far is committed. */
  drain(opts?: { timeoutMs?: number }): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_NAMESPACE = 'fraud';
export const DEFAULT_BATCH = 500;

/**
 * The app's own key (rules and instance id of the namespace). It sits among
 * the namespace's own keys (`{<ns>}:…`, persistence/keys.ts; the engine's are
 * `{<ns>}:meta` and `{<ns>}:workers`), so deleteNamespace removes it with the
 * rest: a namespace created again gets its rules anew and a new instance id.
 */
const metaKey = (namespace: string) => `{${namespace}}:app:fraud`;

function connect(config: RedisConfig): Redis | Cluster {
  if (typeof config === 'string') return new Redis(config, { maxRetriesPerRequest: null });
  if ('cluster' in config) return new Cluster(config.cluster, config.options);
  return new Redis({ ...config, maxRetriesPerRequest: null });
}

/** A client of the app's own for the Redis the system uses (for the namespace's meta and streams). */
export function appRedis(config: RedisConfig): Redis | Cluster {
  const client = connect(config);
  client.on('error', () => {});
  return client;
}

/**
 * The namespace's rules and instance id: stored on first use, checked
 * afterwards. The three commands are written back to back on one connection
 * (one round trip; Redis applies them in order).
 */
async function claimNamespace(client: Redis | Cluster, namespace: string, rules: RulesConfig): Promise<string> {
  const key = metaKey(namespace);
  const given = JSON.stringify(rules);
  const [, , [stored, instance]] = await Promise.all([client.hsetnx(key, 'rules', given), client.hsetnx(key, 'instance', randomUUID()), client.hmget(key, 'rules', 'instance')]);
  if (stored !== given) throw new RulesMismatchError(namespace, JSON.parse(stored!) as RulesConfig, rules);
  return instance!;
}

/** Checked transactions as keyflow events of their accounts: the transaction id is the event id, its `ts` the event time. */
function transactionItems(transactions: readonly Transaction[]): SendManyItem[] {
  return transactions.map(({ id, accountId, ts, ...fields }) => ({ type: ACCOUNT_ACTOR_TYPE, key: accountId, event: { type: 'tx', ...fields }, id, ts }));
}

/**
 * Send transactions already checked (by parseTransactionLine, parseStreamEntry
 * or toTransaction) in batches of `batchSize`: the runs check each line once,
 * where they can say which line was wrong, and send with this.
 */
export async function sendTransactions(system: ActorSystem, transactions: readonly Transaction[], batchSize = DEFAULT_BATCH): Promise<void> {
  const items = transactionItems(transactions);
  for (let i = 0; i < items.length; i += batchSize) await system.sendMany(items.slice(i, i + batchSize));
}

export async function createFraudDetector(opts: FraudDetectorOptions): Promise<FraudDetector> {
  const rules = resolveRules(opts.rules);
  const namespace = opts.namespace ?? DEFAULT_NAMESPACE;
  const client = appRedis(opts.redis);
  let instance: string;
  try {
    instance = await claimNamespace(client, namespace, rules);
  } finally {
    client.disconnect();
  }
  const system = await createActorSystem({
    streamMaxLen: 1_000_000,
    ...opts.system,
    redis: opts.redis,
    namespace,
    partitions: opts.partitions ?? 16,
    actors: [accountActor(rules)],
    worker: opts.worker ?? true,
  });

  return {
    system,
    rules,
    namespace,
    instance,
    async submit(transactions, { batchSize = DEFAULT_BATCH } = {}) {
      if (!Array.isArray(transactions)) throw new InvalidTransactionError('transactions', 'expected an array of transactions');
      // All are checked before any is sent.
      const checked = transactions.map((value, i) => toTransaction(value, `transactions[${i}]`));
      await sendTransactions(system, checked, batchSize);
    },
    async review(accountId, decision, { reviewer, id, ts } = {}) {
      if (decision !== 'clear' && decision !== 'block') throw new InvalidTransactionError('review', `decision: expected 'clear' or 'block', received ${JSON.stringify(decision)}`);
      const event: Omit<ReviewEvent, 'id' | 'ts'> = reviewer === undefined ? { type: 'review', decision } : { type: 'review', decision, reviewer };
      await system.send(ACCOUNT_ACTOR_TYPE, accountId, event, { id, ts });
    },
    async account(accountId) {
      const state: ActorState | undefined = await system.get(ACCOUNT_ACTOR_TYPE, accountId);
      if (!state) return undefined;
      const c = state.context as unknown as AccountContext;
      return { accountId, status: state.value as AccountStatus, txCount: c.txCount, alertCount: c.alertCount, lateCount: c.lateCount, lastAlertTs: c.lastAlertTs, seq: state.seq };
    },
    outputsPosition: () => system.outputsPosition(),
    outputs({ from = 'start', until } = {}) {
      // Not a generator: return() must be able to end a read blocked in Redis.
      const source = system.outputs({ from, until });
      return {
        [Symbol.asyncIterator](): AsyncIterator<PositionedFraudOutput> {
          const it = source[Symbol.asyncIterator]();
          return {
            async next() {
              for (;;) {
                const r = await it.next();
                if (r.done) return { done: true, value: undefined };
                if (r.value.type !== ACCOUNT_ACTOR_TYPE) continue;
                return { done: false, value: { output: r.value.event as unknown as FraudOutput, id: r.value.id, position: r.value.position } };
              }
            },
            async return() {
              await it.return?.();
              return { done: true, value: undefined };
            },
          };
        },
      };
    },
    drain: (o) => system.drain(o),
    close: () => system.close(),
  };
}
