import { TerminalActorError } from '../../supervisors';
import { showValue } from '../errors';

/**
 * An item given to a window operator had no usable event time or value (ts
 * or value not a finite number), or `advance` got no usable watermark.
 * `windowedAggregate` dead-letters such an event at once: it changes nothing.
 */
export class InvalidWindowItemError extends TerminalActorError {
  constructor(
    readonly field: 'ts' | 'value' | 'watermark',
    readonly received: unknown,
    hint: string,
  ) {
    super(`invalid window ${field === 'watermark' ? 'watermark' : 'item'}: ${field} must be a finite number, received ${showValue(received)}: ${hint}`, undefined, 'INVALID_WINDOW_ITEM');
  }
}
