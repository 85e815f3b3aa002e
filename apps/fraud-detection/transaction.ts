/**
 * A card transaction as the fraud-detection worker takes it, and the checks
 * that turn an input line (NDJSON) or a stream entry into one.
 */
import { z } from 'zod';
import { KeyflowError } from '../../index';

/** One transaction. `ts` is its event time in ms; `id` becomes the keyflow event id. */
export interface Transaction {
  id: string;
  accountId: string;
  /** In the account's settlement currency, > 0. */
  amount: number;
  /** ISO 4217 code of the settlement currency, e.g. "EUR". */
  currency: string;
  ts: number;
  lat: number;
  lng: number;
  merchant: string;
  /** ISO 3166 alpha-2 code of the merchant's country, e.g. "FR". */
  country: string;
}

/** Longest id / accountId accepted (keyflow's idempotency ids are at most 256 characters). */
const MAX_ID = 256;

export const transactionSchema = z.object({
  id: z.string().min(1).max(MAX_ID),
  accountId: z.string().min(1).max(MAX_ID),
  amount: z.number().positive().max(1e12),
  currency: z.string().regex(/^[A-Z]{3}$/, 'expected a 3-letter upper-case currency code'),
  ts: z.number().int().nonnegative().max(8.64e15),
  lat: z.number().min(-90).max(90),
  lng: z.number().min(-180).max(180),
  merchant: z.string().min(1).max(200),
  country: z.string().regex(/^[A-Z]{2}$/, 'expected a 2-letter upper-case country code'),
});

/** A line, or a stream entry, that is not a valid transaction. Never stops a run: it is counted and reported. */
export class InvalidTransactionError extends KeyflowError {
  /**
   * @param where `line 12` or `entry 1700000000000-0`: where the input was
   * @param reason what is wrong, field by field
   */
  constructor(
    readonly where: string,
    readonly reason: string,
  ) {
    super('INVALID_TRANSACTION', `${where}: ${reason}`);
  }
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.join('.');
      if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) return `${path}: missing`;
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

/** Check a decoded value; throws InvalidTransactionError saying which fields are wrong. */
export function toTransaction(value: unknown, where: string): Transaction {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidTransactionError(where, `expected a JSON object, received ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  const parsed = transactionSchema.safeParse(value);
  if (!parsed.success) throw new InvalidTransactionError(where, describeIssues(parsed.error));
  return parsed.data;
}

/** What the account actor checks each `tx` event against: a transaction without its account (the actor's key). */
const txFieldsSchema = transactionSchema.omit({ accountId: true });

/**
 * Check the fields of a `tx` event as the account actor receives them (sent
 * by `submit`, or by anyone straight to the actor system); throws
 * InvalidTransactionError saying which fields are wrong.
 */
export function checkTxFields(value: unknown, where: string): void {
  const parsed = txFieldsSchema.safeParse(value);
  if (!parsed.success) throw new InvalidTransactionError(where, describeIssues(parsed.error));
}

/** Parse one NDJSON line (numbered from 1); throws InvalidTransactionError on anything but a valid transaction. */
export function parseTransactionLine(line: string, lineNo: number): Transaction {
  const where = `line ${lineNo}`;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new InvalidTransactionError(where, `not JSON (${(err as Error).message})`);
  }
  return toTransaction(value, where);
}

const NUMERIC_FIELDS = new Set(['amount', 'ts', 'lat', 'lng']);

/**
 * A Redis stream entry: either one field `tx` holding the transaction as JSON,
 * or one field per transaction field (numbers as their decimal text).
 */
export function parseStreamEntry(entryId: string, fields: string[]): Transaction {
  const where = `entry ${entryId}`;
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!, fields[i + 1]!);
  const json = map.get('tx');
  if (json !== undefined) {
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch (err) {
      throw new InvalidTransactionError(where, `field tx is not JSON (${(err as Error).message})`);
    }
    return toTransaction(value, where);
  }
  const value: Record<string, unknown> = {};
  for (const [k, v] of map) {
    if (!NUMERIC_FIELDS.has(k)) value[k] = v;
    else value[k] = v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
  }
  return toTransaction(value, where);
}
