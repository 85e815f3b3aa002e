/** Actors: definitions, the actor host, partition workers and the actor system. */
export { defineActor, type ActorOptions, type ActorDefinition } from './define-actor';
export { sendToActor, MAIL_EVENT_TYPE } from './send-to-actor';
export {
  createActorSystem,
  type ActorSystem,
  type ActorSystemOptions,
  type RedisConfig,
  type SendOptions,
  type SendManyItem,
  type DeadLetter,
  type OutputsOptions,
  type PositionedOutput,
} from './system';
export type { ActorState } from './state-view';
export type { Output } from './step-builder';
export { SystemEvents, type SystemListener, type SupervisionEvent, type ErrorContext } from './system-events';
export {
  UnknownActorTypeError,
  InvalidKeyError,
  InvalidEventError,
  EventTooLargeError,
  AskTimeoutError,
  SystemClosedError,
  NamespaceMismatchError,
  VersionMismatchError,
  DeadLetterNotFoundError,
  EventDeadLetteredError,
  DrainTimeoutError,
  ActorStoppedError,
  RehydrationError,
  type VersionMismatchReason,
} from './errors';
export { MAX_KEY_BYTES } from './validation';
export type { VerifyOptions, VerifyReport, VerifyMismatch, VerifyError, VerifySkipped, VerifiedState } from './verify';
export {
  windowOperator,
  windowedAggregate,
  InvalidWindowItemError,
  MAX_WINDOWS_PER_ITEM,
  type WindowSpec,
  type AggregateSpec,
  type BuiltInAggregate,
  type CustomAggregate,
  type WindowOperator,
  type WindowOperatorOptions,
  type WindowState,
  type WindowResult,
  type WindowLate,
  type WindowItem,
  type WindowStep,
  type OpenWindow,
  type RetainedItem,
  type WindowedAggregateOptions,
  type WindowedEvent,
} from './windows';
export {
  streamTableJoin,
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
} from './joins';
