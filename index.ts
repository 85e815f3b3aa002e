/**
 * keyflow: persistent keyed XState v5 actors on Redis, with exactly-once
 * commits. The public API (docs/api.md).
 */
export {
  defineActor,
  sendToActor,
  createActorSystem,
  SystemEvents,
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
  MAX_KEY_BYTES,
  type ActorOptions,
  type ActorDefinition,
  type ActorSystem,
  type ActorSystemOptions,
  type RedisConfig,
  type SendOptions,
  type SendManyItem,
  type DeadLetter,
  type OutputsOptions,
  type PositionedOutput,
  type ActorState,
  type Output,
  type SystemListener,
  type SupervisionEvent,
  type ErrorContext,
} from './actors';
export { TerminalActorError, type SupervisionOptions, type OnExhausted } from './supervisors';
export { KeyflowError, InvalidOptionError, LeaseLostError, CorruptRecordError, type JournalEntry } from './persistence';
