/** Joins: the stream-table join as a pure operator for any machine's context, and a ready-made machine (docs/joins.md). */
export {
  streamTableJoinOperator,
  InvalidJoinEventError,
  JOIN_TICK_EVENT,
  type StreamTableJoinOptions,
  type StreamTableJoinOperator,
  type JoinEvent,
  type JoinMeta,
  type JoinState,
  type JoinStep,
  type JoinTimer,
  type TableVersion,
  type OnMissing,
  type Versioning,
} from './operator';
export { streamTableJoin } from './stream-table-join';
