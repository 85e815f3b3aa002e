import type { AnyMachineSnapshot } from 'xstate';
import type { JsonObject } from '../persistence';

/** The committed state of an actor, as `get`, `ask` and `replay` return it. */
export interface ActorState {
  type: string;
  key: string;
  /** XState state value, e.g. `'open'` or `{ trip: 'onTheWay' }`. */
  value: unknown;
  context: JsonObject;
  /** XState status: `'active'`, or `'done'` once a final state is reached. */
  status: string;
  /** Number of events applied. */
  seq: number;
  /** Machine version. */
  version: number;
}

export function stateView(type: string, key: string, snapshot: AnyMachineSnapshot, seq: number, version: number): ActorState {
  return {
    type,
    key,
    value: JSON.parse(JSON.stringify(snapshot.value)) as unknown,
    context: JSON.parse(JSON.stringify(snapshot.context ?? {})) as JsonObject,
    status: snapshot.status,
    seq,
    version,
  };
}
