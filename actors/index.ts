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
export { SystemEvents, type SystemListener, type SupervisionEvent, type CommittedEvent, type ErrorContext } from './system-events';
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
export { WORKER_NODE_FLAGS } from './node-flags';
export type { VerifyOptions, VerifyReport, VerifyMismatch, VerifyError, VerifySkipped, VerifiedState } from './verify';
export * from './windows';
export * from './joins';
