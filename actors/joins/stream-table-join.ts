import { enqueueActions, setup } from 'xstate';
import { TerminalActorError } from '../../supervisors';
import {
  InvalidJoinEventError,
  JOIN_TICK_EVENT,
  streamTableJoinOperator,
  type JoinEvent,
  type JoinState,
  type StreamTableJoinOptions,
} from './operator';

/**
 * A ready-made machine (usable directly as an actor type's machine) for the
 * stream-table join: the key's table value is set by the table events, each
 * stream event of the key is emitted as the output `enrich(event, value,
 * meta)`, and a stream event with no table value is emitted unenriched,
 * dropped or held (`onMissing`). Its context is the join's state. Send both
 * sides to the same key (the join key). Held events are bounded by
 * `hold.maxEvents` and, with a durable timer, `hold.maxMs`.
 *
 * An event whose `ts` is not a finite number is dead-lettered at once (a
 * TerminalActorError caused by an InvalidJoinEventError).
 */
export function streamTableJoin<S extends JoinEvent = JoinEvent, T extends JoinEvent = JoinEvent, V = unknown, O extends { type: string } = { type: string }>(
  opts: StreamTableJoinOptions<S, T, V, O>,
) {
  const op = streamTableJoinOperator<S, T, V, O>(opts);
  return setup({
    types: {
      context: {} as JoinState<V, S>,
      events: {} as JoinEvent,
      input: {} as { key: string },
      emitted: {} as O,
    },
    actions: {
      step: enqueueActions(({ context, event, enqueue }) => {
        let step;
        try {
          step = op.step(context, event as JoinEvent);
        } catch (err) {
          // Terminal by its class (InvalidJoinEventError is a TerminalActorError); reported as the
          // documented TerminalActorError caused by it.
          if (err instanceof InvalidJoinEventError) throw new TerminalActorError(err.message, { cause: err });
          throw err;
        }
        if (step.state === context) return;
        enqueue.assign(step.state);
        for (const out of step.outputs) enqueue.emit(out);
        if (step.timer?.op === 'arm') enqueue.raise({ type: JOIN_TICK_EVENT, at: step.timer.at } as unknown as JoinEvent, { id: JOIN_TICK_EVENT, delay: step.timer.delayMs });
        else if (step.timer?.op === 'cancel') enqueue.cancel(JOIN_TICK_EVENT);
      }),
    },
  }).createMachine({
    id: 'streamTableJoin',
    context: () => op.init(),
    on: { '*': { actions: 'step' } },
  });
}
