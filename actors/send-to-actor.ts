import { emit, type ActionFunction, type AnyEventObject, type EventObject, type MachineContext, type ParameterizedObject } from 'xstate';
import type { JsonObject } from '../persistence';

/** The emitted event that carries actor-to-actor mail out of a step. */
export const MAIL_EVENT_TYPE = '@keyflow/mail';

export interface MailEvent {
  type: typeof MAIL_EVENT_TYPE;
  to: { type: string; key: string };
  event: JsonObject;
}

/** What a key or event function of `sendToActor` receives: the step's context and event. */
export interface MailArgs<TContext extends MachineContext = MachineContext, TEvent extends EventObject = EventObject> {
  context: TContext;
  event: TEvent;
}

/**
 * An action that delivers `event` to the actor `type`/`key`, exactly once,
 * after this step commits. `key` and `event` may be functions of
 * `{ context, event }`. The mail goes out through the partition's outbox; it
 * is never sent if the step fails.
 */
export function sendToActor<
  TContext extends MachineContext,
  TExpressionEvent extends EventObject,
  TParams extends ParameterizedObject['params'] | undefined,
  TEvent extends EventObject,
  TEmitted extends AnyEventObject,
>(
  type: string,
  key: string | ((args: MailArgs<TContext, TExpressionEvent>) => string),
  event: { type: string } | ((args: MailArgs<TContext, TExpressionEvent>) => { type: string }),
): ActionFunction<TContext, TExpressionEvent, TEvent, TParams, never, never, never, never, TEmitted> {
  return emit<TContext, TExpressionEvent, TParams, TEvent, TEmitted>(({ context, event: current }) => {
    const args = { context, event: current };
    const mail: MailEvent = {
      type: MAIL_EVENT_TYPE,
      to: { type, key: typeof key === 'function' ? key(args) : key },
      event: (typeof event === 'function' ? event(args) : event) as unknown as JsonObject,
    };
    return mail as unknown as TEmitted;
  });
}
