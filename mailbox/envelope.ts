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
 * An envelope on the wire (format 3): `[id, ts, type, key, eventJson]`, then
 * `ask` (or null) and `timer` when set. The event travels as its JSON text,
 * kept from the send (validation made it once): the producer does not walk
 * the event again, and the worker has the text as sent (for the journal) and
 * parses it once, for the machine.
 */
export type WireTuple =
  | [id: string, ts: number, type: string, key: string, event: string]
  | [id: string, ts: number, type: string, key: string, event: string, ask: string | null, timer?: { id: string; token: number }];

/**
 * The data of one BullMQ job: the envelopes of one partition, in send order.
 * Format 3 (written now) carries them as `WireTuple`s. Formats 1 (an array of
 * envelope objects) and 2 (their JSON array text, `n` of them) are still read.
 */
export type MailboxJobData = { v: 1; events: Envelope[] } | { v: 2; n: number; events: string } | { v: 3; events: WireTuple[] };

/** The wire form of an envelope. */
export function toWire(env: WireEnvelope): WireTuple {
  const event = env[EVENT_JSON] ?? JSON.stringify(env.event);
  if (env.ask === undefined && env.timer === undefined) return [env.id, env.ts, env.type, env.key, event];
  return env.timer === undefined ? [env.id, env.ts, env.type, env.key, event, env.ask ?? null] : [env.id, env.ts, env.type, env.key, event, env.ask ?? null, env.timer];
}

/** The JSON text of an envelope object (how the outbox stores mail). */
export function encodeEnvelope(env: WireEnvelope): string {
  const event = env[EVENT_JSON] ?? JSON.stringify(env.event);
  let s = `{"id":${JSON.stringify(env.id)},"ts":${JSON.stringify(env.ts)},"type":${JSON.stringify(env.type)},"key":${JSON.stringify(env.key)},"event":${event}`;
  if (env.ask !== undefined) s += `,"ask":${JSON.stringify(env.ask)}`;
  if (env.timer !== undefined) s += `,"timer":${JSON.stringify(env.timer)}`;
  return `${s}}`;
}

/** Job data for envelopes in wire form. */
export function jobData(wire: WireTuple[]): MailboxJobData {
  return { v: 3, events: wire };
}

/** How many events a job carries (without decoding them). */
export function eventCount(data: MailboxJobData | undefined): number {
  if (!data) return 0;
  if (data.v === 2) return data.n;
  return Array.isArray(data.events) ? data.events.length : 0;
}

/** The newest job data format this code reads (and the one it writes). */
export const MAILBOX_FORMAT = 3;

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
  return !!x && typeof x.id === 'string' && typeof x.type === 'string' && typeof x.key === 'string' && typeof x.ts === 'number' && isEventObject(x.event);
}

function isEventObject(e: unknown): e is JsonObject {
  return typeof e === 'object' && e !== null && !Array.isArray(e);
}

/** The envelope of a format 3 tuple, or undefined if it is not one. */
function fromWire(t: unknown): WireEnvelope | undefined {
  if (!Array.isArray(t) || t.length < 5 || t.length > 7) return undefined;
  const [id, ts, type, key, json, ask, timer] = t as unknown[];
  if (typeof id !== 'string' || typeof ts !== 'number' || typeof type !== 'string' || typeof key !== 'string' || typeof json !== 'string') return undefined;
  let event: unknown;
  try {
    event = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (!isEventObject(event)) return undefined;
  const env: WireEnvelope = { id, ts, type, key, event, [EVENT_JSON]: json };
  if (ask !== undefined && ask !== null) {
    if (typeof ask !== 'string') return undefined;
    env.ask = ask;
  }
  if (timer !== undefined) {
    const tm = timer as { id?: unknown; token?: unknown } | null;
    if (!tm || typeof tm.id !== 'string' || typeof tm.token !== 'number') return undefined;
    env.timer = { id: tm.id, token: tm.token };
  }
  return env;
}

/**
 * The envelopes of a job, or undefined if its data is not keyflow's (a
 * format this code does not know, text that does not parse, or any entry
 * that is not an envelope): such a job is reported whole, never partly applied.
 * Format 3 envelopes carry their event's JSON text as sent (`EVENT_JSON`).
 */
export function decodeJobData(data: unknown): WireEnvelope[] | undefined {
  const d = data as { v?: unknown; events?: unknown } | null | undefined;
  if (d?.v === 3) {
    if (!Array.isArray(d.events)) return undefined;
    const out: WireEnvelope[] = new Array(d.events.length);
    for (let i = 0; i < d.events.length; i++) {
      const env = fromWire(d.events[i]);
      if (!env) return undefined;
      out[i] = env;
    }
    return out;
  }
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
