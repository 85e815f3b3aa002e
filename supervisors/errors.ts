import { KeyflowError } from '../persistence';

/**
 * Thrown from a machine (action, guard, assign) to say an event can never
 * succeed: the event is dead-lettered at once, without restarts. Anything else
 * thrown counts toward the restart intensity.
 */
export class TerminalActorError extends KeyflowError {
  /** `code`: a subclass's own (an input error that no retry can fix is terminal by its class). */
  constructor(message: string, options?: { cause?: unknown }, code = 'TERMINAL') {
    super(code, message, options);
  }
}
