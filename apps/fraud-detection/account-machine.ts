/**
 * The account actor: one persistent XState machine per account, keyed by
 * accountId. Scores every transaction with the rules (rules.ts) and emits
 *
 *   { type: 'fraud.alert', accountId, rule, txIds, ts, score, detail }   per account, rule and window
 *   { type: 'fraud.late', accountId, txId, ts, watermark }               a transaction beyond the grace period
 *   { type: 'fraud.status', accountId, from, to, ts, reason }            a change of state
 *
 * States: normal → watch (an alert) → blocked (`blockAfterAlerts` alerts
 * within `withinMs`); a watched account with no alert for `watchCooldownMs`
 * returns to normal on its next transaction. A `review` event clears the
 * account (→ normal, its alert count reset) or blocks it. Transactions are
 * scored in every state. A `tx` event that is not a valid transaction
 * (transaction.ts; only a send that bypasses `submit` can carry one) is
 * dead-lettered at once and changes nothing.
 *
 * Deterministic: every time it reads is an event's `ts`.
 */
import { assign, emit, enqueueActions, setup } from 'xstate';
import { defineActor, TerminalActorError, type ActorDefinition } from '../../index';
import type { RulesConfig } from './config';
import { createScorer, type FraudAlert, type RulesState, type TxFields } from './rules';
import { checkTxFields, InvalidTransactionError } from './transaction';

export const ACCOUNT_ACTOR_TYPE = 'fraud-account';

export type AccountStatus = 'normal' | 'watch' | 'blocked';

export type TxEvent = { type: 'tx' } & TxFields;
export interface ReviewEvent {
  type: 'review';
  decision: 'clear' | 'block';
  /** Who reviewed, free text. */
  reviewer?: string;
  id: string;
  ts: number;
}
export type AccountEvent = TxEvent | ReviewEvent;

export interface AccountContext {
  accountId: string;
  rules: RulesState;
  /** Event times of the alerts within `status.withinMs` of the latest one (the block rule counts them). */
  recentAlerts: number[];
  lastAlertTs: number | null;
  /** Alerts raised by the last transaction. */
  stepAlerts: number;
  lastTxTs: number | null;
  txCount: number;
  alertCount: number;
  lateCount: number;
}

export interface FraudLate {
  type: 'fraud.late';
  accountId: string;
  txId: string;
  ts: number;
  watermark: number;
}

export interface FraudStatusChange {
  type: 'fraud.status';
  accountId: string;
  from: AccountStatus;
  to: AccountStatus;
  ts: number;
  reason: string;
}

/** Every output of the account actor. */
export type FraudOutput = FraudAlert | FraudLate | FraudStatusChange;

export function createAccountMachine(rules: RulesConfig) {
  const scorer = createScorer(rules);
  const status = rules.status;
  /** A review event in state `from`: block or clear where that changes the state; otherwise only reset the alert count. */
  const review = (from: AccountStatus) => [
    ...(from !== 'blocked'
      ? [{ guard: 'reviewBlock' as const, target: 'blocked', actions: ['reviewed' as const, { type: 'status' as const, params: { from, to: 'blocked' as const, reason: 'review: block' } }] }]
      : []),
    ...(from !== 'normal'
      ? [{ guard: 'reviewClear' as const, target: 'normal', actions: ['reviewed' as const, { type: 'status' as const, params: { from, to: 'normal' as const, reason: 'review: clear' } }] }]
      : []),
    { actions: 'reviewed' as const },
  ];

  return setup({
    types: {
      context: {} as AccountContext,
      events: {} as AccountEvent,
      input: {} as { key: string },
    },
    actions: {
      score: enqueueActions(({ context, event, enqueue }) => {
        if (event.type !== 'tx') return;
        // submit() checks transactions, but anyone may send to the actor: a NaN
        // amount would poison the Welford state (and snapshot as null), a missing
        // position raise a bogus impossible-travel alert. No restart can fix such
        // an event: dead-letter it at once, the account goes on unchanged.
        try {
          checkTxFields(event, `account ${context.accountId}: tx ${typeof event.id === 'string' ? event.id : '(no id)'}`);
        } catch (err) {
          if (err instanceof InvalidTransactionError) throw new TerminalActorError(err.message, { cause: err });
          throw err;
        }
        const scored = scorer.score(context.rules, context.accountId, event);
        const alertTimes = scored.alerts.length > 0 ? [...context.recentAlerts, ...scored.alerts.map(() => event.ts)] : context.recentAlerts;
        const newest = Math.max(context.lastAlertTs ?? -Infinity, ...alertTimes);
        enqueue.assign({
          rules: scored.state,
          recentAlerts: alertTimes.filter((t) => t > newest - status.withinMs).slice(-status.blockAfterAlerts),
          lastAlertTs: scored.alerts.length > 0 ? Math.max(context.lastAlertTs ?? event.ts, event.ts) : context.lastAlertTs,
          stepAlerts: scored.alerts.length,
          lastTxTs: Math.max(context.lastTxTs ?? event.ts, event.ts),
          txCount: context.txCount + 1,
          alertCount: context.alertCount + scored.alerts.length,
          lateCount: context.lateCount + (scored.late ? 1 : 0),
        });
        for (const alert of scored.alerts) enqueue.emit(alert as never);
        if (scored.late) {
          const late: FraudLate = { type: 'fraud.late', accountId: context.accountId, txId: event.id, ts: event.ts, watermark: scored.watermark };
          enqueue.emit(late as never);
        }
      }),
      reviewed: assign({ recentAlerts: [], stepAlerts: 0 }),
      status: emit(({ context, event }, params: { from: AccountStatus; to: AccountStatus; reason: string }) => {
        const out: FraudStatusChange = { type: 'fraud.status', accountId: context.accountId, ...params, ts: event.ts };
        return out as never;
      }),
    },
    guards: {
      alerted: ({ context }) => context.stepAlerts > 0,
      blockable: ({ context }) => context.recentAlerts.length >= status.blockAfterAlerts,
      reviewBlock: ({ event }) => event.type === 'review' && event.decision === 'block',
      reviewClear: ({ event }) => event.type === 'review' && event.decision === 'clear',
      cooledDown: ({ context }) =>
        context.stepAlerts === 0 && context.lastAlertTs !== null && context.lastTxTs !== null && context.lastTxTs - context.lastAlertTs >= status.watchCooldownMs,
    },
  }).createMachine({
    id: 'fraud-account',
    context: ({ input }) => ({
      accountId: input.key,
      rules: scorer.init(),
      recentAlerts: [],
      lastAlertTs: null,
      stepAlerts: 0,
      lastTxTs: null,
      txCount: 0,
      alertCount: 0,
      lateCount: 0,
    }),
    initial: 'normal',
    on: { tx: { actions: 'score' } },
    states: {
      normal: {
        always: { guard: 'alerted', target: 'watch', actions: { type: 'status', params: { from: 'normal', to: 'watch', reason: 'alert' } } },
        on: { review: review('normal') },
      },
      watch: {
        always: [
          { guard: 'blockable', target: 'blocked', actions: { type: 'status', params: { from: 'watch', to: 'blocked', reason: `${status.blockAfterAlerts} alerts within ${status.withinMs} ms` } } },
          { guard: 'cooledDown', target: 'normal', actions: { type: 'status', params: { from: 'watch', to: 'normal', reason: 'no alert during the cool-down' } } },
        ],
        on: { review: review('watch') },
      },
      blocked: {
        on: { review: review('blocked') },
      },
    },
  });
}

/** The account actor type for these rules. Every worker of a namespace must use the same rules. */
export function accountActor(rules: RulesConfig): ActorDefinition {
  return defineActor({ type: ACCOUNT_ACTOR_TYPE, machine: createAccountMachine(rules), snapshotEvery: 50, version: 1 });
}
