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

/**
 * Where `toEnvelope` keeps the event's JSON text, made once when the send was
 * validated: the wire form is built from it, so the event is neither copied
 * nor serialized again (and a caller mutating its object after `send` changes
 * nothing). A symbol key: `JSON.stringify` skips it.
 */
export const EVENT_JSON: unique symbol = Symbol('keyflow.eventJson');

/** An envelope that may carry its event's JSON text. */
export type WireEnvelope = Envelope & { [EVENT_JSON]?: string };

/**
 * The data of one BullMQ job: the envelopes of one partition, in send order.
 * Version 2 (written now) carries them as one JSON array text, `n` of them:
 * built from each event's JSON text without walking the objects again, and
 * parsed once by the consumer. Version 1 (an array of objects) is still read.
 */
export type MailboxJobData = { v: 1; events: Envelope[] } | { v: 2; n: number; events: string };

/** The JSON text of an envelope (its wire form). */
export function encodeEnvelope(env: WireEnvelope): string {
  const event = env[EVENT_JSON] ?? JSON.stringify(env.event);
  let s = `{"id":${JSON.stringify(env.id)},"ts":${JSON.stringify(env.ts)},"type":${JSON.stringify(env.type)},"key":${JSON.stringify(env.key)},"event":${event}`;
  if (env.ask !== undefined) s += `,"ask":${JSON.stringify(env.ask)}`;
  if (env.timer !== undefined) s += `,"timer":${JSON.stringify(env.timer)}`;
  return `${s}}`;
}

/** Job data for envelopes already in wire form. */
export function jobData(wire: string[]): MailboxJobData {
  return { v: 2, n: wire.length, events: `[${wire.join(',')}]` };
}

/** How many events a job carries (without parsing them). */
export function eventCount(data: MailboxJobData | undefined): number {
  if (!data) return 0;
  return data.v === 2 ? data.n : Array.isArray(data.events) ? data.events.length : 0;
}

/** The newest job data format this code reads (and the one it writes). */
export const MAILBOX_FORMAT = 2;

/**
 * Whether a job was written by a newer keyflow (a format above
 * MAILBOX_FORMAT): this code cannot read it, but an upgraded worker can, so it
 * must be left in place, never dropped (a rolling deploy has both at once).
 */
export function isNewerFormat(data: unknown): number | undefined {
  const v = (data as { v?: unknown } | null | undefined)?.v;
  return typeof v === 'number' && Number.isInteger(v) && v > MAILBOX_FORMAT ? v : undefined;
}

/** Whether a decoded value has the shape of an envelope (what the worker relies on). */
function isEnvelope(e: unknown): e is Envelope {
  const x = e as Partial<Envelope> | null;
  return !!x && typeof x.id === 'string' && typeof x.type === 'string' && typeof x.key === 'string' && typeof x.ts === 'number' && typeof x.event === 'object' && x.event !== null;
}

/**
 * The envelopes of a job, or undefined if its data is not keyflow's (a
 * format this code does not know, text that does not parse, or any entry
 * that is not an envelope): such a job is reported whole, never partly applied.
 */
export function decodeJobData(data: unknown): Envelope[] | undefined {
  const d = data as { v?: unknown; events?: unknown } | null | undefined;
  let events: unknown;
  if (d?.v === 1) events = d.events;
  else if (d?.v === 2 && typeof d.events === 'string') {
    try {
      events = JSON.parse(d.events);
    } catch {
      return undefined;
    }
  }
  return Array.isArray(events) && events.every(isEnvelope) ? events : undefined;
}

/** Queue name of a partition inside its hash-tagged prefix. */
export const QUEUE_NAME = 'q';
