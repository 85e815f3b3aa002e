/**
 * The base of every error keyflow throws on purpose. `code` is stable and
 * machine-readable; the message says what was wrong and what to do.
 */
export class KeyflowError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The partition's lease expired or another worker took it over: this worker
 * may no longer commit for it (fencing). Retryable by another owner.
 */
export class LeaseLostError extends KeyflowError {
  constructor(
    readonly partition: number,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      'LEASE_LOST',
      `lease of partition ${partition} lost: held "${expected}", Redis has "${actual || '(none)'}". ` +
        'The worker drops the partition and lets its current owner go on.',
    );
  }
}

/** An option of keyflow's had a wrong value: names the option, what it expects and what it got. */
export class InvalidOptionError extends KeyflowError {
  constructor(option: string, expected: string, received: unknown) {
    let shown: string;
    try {
      shown = JSON.stringify(received) ?? String(received);
    } catch {
      shown = String(received);
    }
    super('INVALID_OPTION', `option ${option}: expected ${expected}, received ${shown}`);
  }
}

/** A journal was not at the sequence number the commit expected: the in-memory actor was stale. */
export class SeqConflictError extends KeyflowError {
  constructor(
    readonly ref: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super('SEQ_CONFLICT', `journal of ${ref} is at seq ${actual}, expected ${expected}: rehydrate and retry`);
  }
}

/** The commit found an event id already applied: the de-dup pre-check was stale. */
export class DuplicateCommitError extends KeyflowError {
  constructor(readonly member: string) {
    super('DUPLICATE_COMMIT', `event ${member} is already applied: re-check de-dup and retry`);
  }
}

/** An unchecked commit (see StepCommit.unchecked) touched an actor that supervision stopped. */
export class StoppedActorCommitError extends KeyflowError {
  constructor(readonly ref: string) {
    super('STOPPED_ACTOR_COMMIT', `actor ${ref} is stopped: re-read the stopped set and retry`);
  }
}

/**
 * A guarded commit (StepCommit.queue) found more jobs in progress in the
 * partition's queue than the committer holds: another owner's, older, to be
 * applied first.
 */
export class ForeignJobsActiveError extends KeyflowError {
  constructor(
    readonly active: number,
    readonly held: number,
  ) {
    super('FOREIGN_JOBS_ACTIVE', `the partition's queue has ${active} jobs in progress and the committer holds ${held}: apply the others first`);
  }
}

/** Stored data that cannot be read back (corrupt JSON, missing fields). */
export class CorruptRecordError extends KeyflowError {
  constructor(what: string, cause?: unknown) {
    super('CORRUPT_RECORD', `stored ${what} cannot be read: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Normalize anything thrown into an Error, once. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : JSON.stringify(thrown) ?? String(thrown));
}
