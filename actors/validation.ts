import { InvalidOptionError } from '../persistence';
import { EVENT_JSON, type JsonObject, type WireEnvelope } from '../mailbox';
import { eventId } from './ids';
import { EventTooLargeError, InvalidEventError, InvalidKeyError, UnknownActorTypeError } from './errors';

/** An integer option: `dflt` when absent, else within [min, max] or an InvalidOptionError naming it. */
export function intOption(name: string, v: unknown, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new InvalidOptionError(name, `an integer from ${min} to ${max}`, v);
  return v;
}

/** Longest actor key accepted, in UTF-8 bytes. Keys longer than 200 encoded characters are stored under a digest. */
export const MAX_KEY_BYTES = 16_384;
const MAX_ID_LENGTH = 256;

export interface SendInput {
  type: string;
  key: string;
  event: unknown;
  id?: string;
  ts?: number;
}

export interface ValidationLimits {
  knownTypes: ReadonlySet<string>;
  maxEventBytes: number;
}

/**
 * Check one send and build its envelope; throws a typed error naming what is
 * wrong. Nothing is written before every item of a call passed. The envelope
 * keeps the event's JSON text (`EVENT_JSON`): that is what goes on the wire,
 * so later changes to the caller's object do not.
 */
export function toEnvelope(input: SendInput, limits: ValidationLimits, now: number): WireEnvelope {
  const { type, key, event, id, ts } = input;
  if (typeof type !== 'string' || !limits.knownTypes.has(type)) throw new UnknownActorTypeError(type, [...limits.knownTypes]);
  if (typeof key !== 'string') throw new InvalidKeyError(key, `expected a string, received ${key === null ? 'null' : typeof key}`);
  if (key.length === 0) throw new InvalidKeyError(key, 'the empty string is not a key');
  if (key.length > MAX_KEY_BYTES || Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    throw new InvalidKeyError(key, `longer than ${MAX_KEY_BYTES} bytes`);
  }
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new InvalidEventError(`expected a plain object with a string 'type', received ${event === null ? 'null' : Array.isArray(event) ? 'an array' : typeof event}`);
  }
  const proto = Object.getPrototypeOf(event);
  if (proto !== Object.prototype && proto !== null) throw new InvalidEventError('expected a plain object (JSON data), received an instance of a class');
  const ev = event as JsonObject;
  if (typeof ev.type !== 'string' || ev.type.length === 0) throw new InvalidEventError(`the event has no string 'type' (received ${JSON.stringify(ev.type) ?? 'undefined'})`);
  if (ev.type.startsWith('xstate.') || ev.type.startsWith('@keyflow/')) {
    throw new InvalidEventError(`event type '${ev.type}' is reserved (xstate.* and @keyflow/* are internal)`);
  }
  if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH)) {
    throw new InvalidEventError(`opts.id must be a non-empty string of at most ${MAX_ID_LENGTH} characters, received ${JSON.stringify(id)}`);
  }
  if (ts !== undefined && (typeof ts !== 'number' || !Number.isFinite(ts) || ts < 0)) {
    throw new InvalidEventError(`opts.ts must be a finite number of ms >= 0, received ${String(ts)}`);
  }
  let json: string;
  try {
    json = JSON.stringify(ev);
  } catch (err) {
    throw new InvalidEventError(`not JSON-serializable: ${(err as Error).message}`);
  }
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short events need no byte count.
  if (json.length * 3 > limits.maxEventBytes) {
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > limits.maxEventBytes) throw new EventTooLargeError(bytes, limits.maxEventBytes);
  }
  return { id: id ?? eventId(now), ts: ts ?? now, type, key, event: ev, [EVENT_JSON]: json };
}

/**
 * The event as the machine sees it: the sent object plus `id` and `ts`, unless
 * the sender set them. A worker's envelope is its own (decoded from a job), so
 * its event is completed in place, not copied (a copy per event was ~12 % of a
 * worker's CPU); its JSON text as sent is kept first in `EVENT_JSON`, for the
 * journal and the dead letters (see `sentEvent`). Idempotent.
 */
export function machineEvent(env: WireEnvelope): JsonObject {
  const ev = env.event;
  if (env[EVENT_JSON] === undefined) env[EVENT_JSON] = JSON.stringify(ev);
  if (ev.id === undefined || ev.id === null) ev.id = env.id;
  if (ev.ts === undefined || ev.ts === null) ev.ts = env.ts;
  return ev;
}

/** The event as it was sent, also after `machineEvent` completed it. */
export function sentEvent(env: WireEnvelope): JsonObject {
  const json = env[EVENT_JSON];
  return json === undefined ? env.event : (JSON.parse(json) as JsonObject);
}
