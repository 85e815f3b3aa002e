import { assign, emit, setup } from 'xstate';
import { defineActor, sendToActor } from '../../index';

export interface AccountContext {
  key: string;
  balance: number;
  applied: number;
  rejected: number;
  /** Ids of the last few events, newest last: makes order visible in tests. */
  recent: string[];
}

export type AccountEvent =
  | { type: 'deposit'; amount: number; id: string; ts: number }
  | { type: 'withdraw'; amount: number; id: string; ts: number }
  | { type: 'transfer'; to: string; amount: number; id: string; ts: number }
  | { type: 'close'; id: string; ts: number };

const remember = (recent: string[], id: string) => [...recent.slice(-9), id];

/**
 * A bank account: deposits, withdrawals (refused when the balance is short),
 * transfers to another account (actor-to-actor mail), and closing. Every
 * refused withdrawal is an output.
 */
export const accountMachine = setup({
  types: {
    context: {} as AccountContext,
    events: {} as AccountEvent,
    input: {} as { key: string },
  },
  guards: {
    covered: ({ context, event }) => 'amount' in event && event.amount <= context.balance,
  },
}).createMachine({
  id: 'account',
  context: ({ input }) => ({ key: input.key, balance: 0, applied: 0, rejected: 0, recent: [] }),
  initial: 'open',
  states: {
    open: {
      on: {
        deposit: {
          actions: assign({
            balance: ({ context, event }) => context.balance + event.amount,
            applied: ({ context }) => context.applied + 1,
            recent: ({ context, event }) => remember(context.recent, event.id),
          }),
        },
        withdraw: [
          {
            guard: 'covered',
            actions: assign({
              balance: ({ context, event }) => context.balance - event.amount,
              applied: ({ context }) => context.applied + 1,
              recent: ({ context, event }) => remember(context.recent, event.id),
            }),
          },
          {
            actions: [
              assign({
                rejected: ({ context }) => context.rejected + 1,
                recent: ({ context, event }) => remember(context.recent, event.id),
              }),
              emit(({ context, event }) => ({
                type: 'withdrawal.rejected',
                account: context.key,
                amount: event.amount,
                balance: context.balance,
                eventId: event.id,
              })),
            ],
          },
        ],
        transfer: {
          guard: 'covered',
          actions: [
            assign({
              balance: ({ context, event }) => context.balance - event.amount,
              applied: ({ context }) => context.applied + 1,
              recent: ({ context, event }) => remember(context.recent, event.id),
            }),
            sendToActor('account', ({ event }) => event.to, ({ event, context }) => ({ type: 'deposit', amount: event.amount, from: context.key })),
          ],
        },
        close: { target: 'closed' },
      },
    },
    closed: { type: 'final' },
  },
});

export const account = defineActor({ type: 'account', machine: accountMachine, snapshotEvery: 20 });
