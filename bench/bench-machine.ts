import { assign, emit, setup } from 'xstate';
import { defineActor } from '../index';

/** Actor type of the bench machine. */
export const BENCH_TYPE = 'bench-counter';

/**
 * What the bench sends: `ph` = phase number, `j` = 0-based index of this
 * event among all the events sent to its key (so the committed seq must be
 * j + 1), `t` = performance.now() when `send` was called (same process).
 */
export interface IncEvent {
  type: 'inc';
  ph: number;
  j: number;
  t: number;
}

/** What the machine emits for every event: one output, carrying the send time back. */
export interface CountedOutput {
  type: 'counted';
  n: number;
  ph: number;
  j: number;
  t: number;
}

/** A counter: one `assign` and one `emit` per event. About the smallest useful machine. */
export const counterMachine = setup({
  types: {
    context: {} as { n: number },
    events: {} as IncEvent & { id?: string; ts?: number },
    input: {} as { key: string },
  },
}).createMachine({
  id: 'benchCounter',
  context: { n: 0 },
  on: {
    inc: {
      actions: [
        assign({ n: ({ context }) => context.n + 1 }),
        emit(({ context, event }) => ({ type: 'counted', n: context.n, ph: event.ph, j: event.j, t: event.t })),
      ],
    },
  },
});

export const benchCounter = defineActor({ type: BENCH_TYPE, machine: counterMachine });
