import { KeyflowError } from '../../persistence';
import { showValue } from '../errors';

/**
 * An item given to a window operator had no usable event time or value (ts
 * or value not a finite number), or `advance` got no usable watermark.
 * `windowedAggregate` dead-letters such an event at once: it changes nothing.
 */
export class InvalidWindowItemError extends KeyflowError {
  constructor(
    readonly field: 'ts' | 'value' | 'watermark',
    readonly received: unknown,
    hint: string,
  ) {
    super('INVALID_WINDOW_ITEM', `invalid window ${field === 'watermark' ? 'watermark' : 'item'}: ${field} must be a finite number, received ${showValue(received)}: ${hint}`);
  }
}
