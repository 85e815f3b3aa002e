/**
 * Persistence: journals, snapshots, de-dup records, outboxes, dead letters and
 * leases in Redis, each atomic operation one Lua script. Knows nothing of
 * BullMQ or XState.
 */
export { KeyflowError, InvalidOptionError, LeaseLostError, SeqConflictError, DuplicateCommitError, StoppedActorCommitError, ForeignJobsActiveError, CorruptRecordError, toError } from './errors';
export { PartitionKeys, encodeKey, decodeKey, journalKeys, actorRef, dedupMember, namespaceMetaKey, namespaceKeysPattern, NAMESPACE_PATTERN } from './keys';
export { deleteNamespace, unlinkMatching } from './namespace';
export { registerScripts, type RedisClient } from './scripts';
export { LeaseStore, type Lease, type AcquireResult } from './lease';
export { JournalStore, type JournalEntry, type StoredSnapshot, type LoadedActor, type JsonObject } from './journal';
export { CommitStore, type StepCommit, type CommitResult, type QueueGuard, type ActorCommit, type OutboxEntry, type OutboxKind, type CommitLimits } from './commit';
export { OutboxStore, positionReached, outputsReadOf, POSITION_ELEMENT, type OutboxRecord } from './outbox';
export { DeadLetterStore, type DeadLetterRecord } from './dead-letters';
export { PartitionStateStore } from './partition-state';
export { MembershipStore } from './membership';
