import { z } from 'zod';
import { MAX_LAT, MAX_LNG } from './geo';

/**
 * The HTTP API's input schemas (zod), and how a failed parse becomes one
 * message that says what was wrong, where, and what was received.
 */

export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const idRule = '1 to 64 letters, digits, "_" or "-", starting with a letter or digit';

export const id = (what: string) => z.string({ error: `must be a string (${what}: ${idRule})` }).regex(ID_PATTERN, { error: `must be ${idRule}` });

const coordinate = (name: 'lat' | 'lng', max: number) => {
  const range = `must be a number from -${max} to ${max}${name === 'lat' ? ' (the latitudes a Redis geo index holds)' : ''}`;
  return z.number({ error: range }).min(-max, { error: range }).max(max, { error: range });
};

export const Point = z.strictObject({ lat: coordinate('lat', MAX_LAT), lng: coordinate('lng', MAX_LNG) }).meta({ description: 'WGS 84 coordinates in degrees' });

export const DriverParams = z.strictObject({ driverId: id('driverId') });
export const RideParams = z.strictObject({ rideId: id('rideId') });
export const WorkerParams = z.strictObject({ slot: z.string().regex(/^\d{1,4}$/, { error: 'must be a worker slot number (0, 1, …)' }).transform(Number) });

export const LocationBody = Point;
export const OfferAnswerBody = z.strictObject({ rideId: id('rideId') });
export const RideRequestBody = z.strictObject({ riderId: id('riderId'), pickup: Point, dropoff: Point });

export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,128}$/;
export const WriteHeaders = z.looseObject({
  'idempotency-key': z
    .string()
    .regex(IDEMPOTENCY_KEY_PATTERN, { error: 'must be 1 to 128 printable ASCII characters without spaces' })
    .optional()
    .meta({ description: 'Makes the write idempotent: a retry with the same key is applied once (it is the event id).' }),
  authorization: z.string().optional().meta({ description: 'Bearer <API_KEY>, when the service runs with API_KEY' }),
});

/** The JSON Schema (OpenAPI 3.0 flavour) of a zod schema: what @fastify/swagger documents. */
export function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, { target: 'openapi-3.0', unrepresentable: 'any' }) as Record<string, unknown>;
}

export interface InputIssue {
  /** Where: `body.pickup.lat`, `params.driverId`, `headers.idempotency-key`. */
  path: string;
  message: string;
}

const shown = (v: unknown) => {
  const s = typeof v === 'number' ? String(v) : (JSON.stringify(v) ?? String(v));
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
};

/** The issues of a failed parse of request part `part`, worded for a person. */
export function describeIssues(part: string, issues: readonly z.core.$ZodIssue[]): InputIssue[] {
  return issues.map((issue) => {
    const path = [part, ...issue.path.map(String)].join('.');
    if (issue.code === 'unrecognized_keys') {
      return { path, message: `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}` };
    }
    if (issue.code === 'invalid_type' && issue.input === undefined) {
      return { path, message: issue.path.length === 0 && part === 'body' ? 'is required: send a JSON object (Content-Type: application/json)' : 'is required' };
    }
    const received = 'input' in issue && issue.input !== undefined ? `, received ${shown(issue.input)}` : '';
    // zod's own wording ("Invalid input: expected object, received string") in the style of ours.
    const message = issue.code === 'invalid_type' && issue.message.startsWith('Invalid input') ? `must be ${/^[aeiou]/.test(issue.expected) ? 'an' : 'a'} ${issue.expected}` : issue.message;
    return { path, message: `${message}${received}` };
  });
}

/** Thrown by the request validator: a 400 whose message lists every issue. */
export class InputError extends Error {
  readonly statusCode = 400;
  constructor(readonly issues: InputIssue[]) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join('; '));
    this.name = 'InputError';
  }
}
