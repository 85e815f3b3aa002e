/** Plain JSON data, as carried by a job. */
export type JsonObject = { [k: string]: unknown };

/**
 * One event on its way to an actor. The mailbox carries envelopes and knows
 * nothing of what the event means.
 */
export interface Envelope {
  /** Event id: uuid v7, the sender's idempotency id, or derived for mail and timers. */
  id: string;
  /** Event time (ms). */
  ts: number;
  /** Target actor type. */
  type: string;
  /** Target actor key. */
  key: string;
  event: JsonObject;
  /** Set by `ask`: the reply list the commit writes the resulting state to. */
  ask?: string;
  /** Set on a durable timer's firing: which timer, armed by which step (`token` = its seq). */
  timer?: { id: string; token: number };
}

/** The data of one BullMQ job: the envelopes of one partition, in send order. */
export interface MailboxJobData {
  v: 1;
  events: Envelope[];
}

/** Queue name of a partition inside its hash-tagged prefix. */
export const QUEUE_NAME = 'q';
