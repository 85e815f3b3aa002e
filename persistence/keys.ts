import { createHash } from 'node:crypto';

/**
 * Redis key layout of one namespace. Every key of a partition carries the hash
 * tag `{<namespace>:<p>}`, so every script touches one slot and Redis Cluster can
 * spread partitions over nodes. BullMQ's keys of the partition's queue use the
 * same tag as their prefix.
 *
 *   {ns:p}:lease         lease value "<epoch>|<owner>" with a TTL
 *   {ns:p}:epoch         epoch counter (fencing token), only grows
 *   {ns:p}:dedup         zset of applied event ids (actor-scoped) -> commit ms
 *   {ns:p}:outbox        stream of outputs (capped at about streamMaxLen)
 *   {ns:p}:mail          stream of actor-to-actor mail not yet relayed
 *   {ns:p}:relay         last mail id relayed to the target queues
 *   {ns:p}:dlq           stream of dead letters
 *   {ns:p}:stopped       hash of stopped actors: ref -> why (supervision 'stop')
 *   {ns:p}:paused        set when supervision escalated: the partition is paused
 *   {ns:p}:j:<ref>       journal of an actor (list of JSON entries, seq = index+1)
 *   {ns:p}:s:<ref>       snapshot of an actor (hash: seq, version, state, at)
 *   {ns:p}:r:<askId>     reply list of one ask
 *   {ns:p}:q:*           BullMQ queue "q" of the partition
 *   {ns}:meta            namespace settings (partitions)
 *   {ns}:workers         live workers (zset: id -> heartbeat expiry), for spreading partitions
 *   {ns}:app:*           an application's own keys (deleted with the namespace)
 *
 * `<ref>` is `<type>:<encoded key>`: see encodeKey.
 */

/** Characters kept as they are in an encoded key; everything else is %XX-escaped. */
const SAFE = /^[A-Za-z0-9._~@=+,-]*$/;
/** Encoded keys longer than this are replaced by a digest. */
const MAX_ENCODED = 200;

/**
 * Encode a user key for use inside a Redis key name. Injective: `%` is escaped,
 * so no two keys share an encoding; the output never holds `:`, `{`, `}`, `*`,
 * `?`, `[`, whitespace or control characters, so a key cannot break out of its
 * place or its hash slot. Very long keys become `#<sha256>`, and `#` never
 * appears in a short encoding.
 */
export function encodeKey(key: string): string {
  let out: string;
  if (SAFE.test(key)) {
    out = key;
  } else {
    out = '';
    for (const byte of Buffer.from(key, 'utf8')) {
      const ch = String.fromCharCode(byte);
      out += byte < 0x80 && SAFE.test(ch) ? ch : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
    }
  }
  if (out.length > MAX_ENCODED) {
    return '#' + createHash('sha256').update(key, 'utf8').digest('hex');
  }
  return out;
}

/** The keys of one partition of a namespace. */
export class PartitionKeys {
  /** Hash-tagged prefix shared by every key of the partition, e.g. `{bank:7}:`. */
  readonly prefix: string;
  /** The hash tag alone, e.g. `{bank:7}`: BullMQ's queue prefix. */
  readonly tag: string;
  readonly lease: string;
  readonly epoch: string;
  readonly dedup: string;
  readonly outbox: string;
  readonly mail: string;
  readonly relay: string;
  readonly deadLetters: string;
  readonly stopped: string;
  readonly paused: string;

  constructor(
    readonly namespace: string,
    readonly partition: number,
  ) {
    this.tag = `{${namespace}:${partition}}`;
    this.prefix = `${this.tag}:`;
    this.lease = this.prefix + 'lease';
    this.epoch = this.prefix + 'epoch';
    this.dedup = this.prefix + 'dedup';
    this.outbox = this.prefix + 'outbox';
    this.mail = this.prefix + 'mail';
    this.relay = this.prefix + 'relay';
    this.deadLetters = this.prefix + 'dlq';
    this.stopped = this.prefix + 'stopped';
    this.paused = this.prefix + 'paused';
  }

  journal(ref: string): string {
    return `${this.prefix}j:${ref}`;
  }

  snapshot(ref: string): string {
    return `${this.prefix}s:${ref}`;
  }

  reply(askId: string): string {
    return `${this.prefix}r:${askId}`;
  }
}

/** The inverse of encodeKey, or undefined for a digest (or a name encodeKey cannot have made). */
export function decodeKey(encoded: string): string | undefined {
  if (encoded.length === 0 || encoded.startsWith('#')) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    if (encoded[i] === '%') {
      bytes.push(Number.parseInt(encoded.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(encoded.charCodeAt(i));
  }
  if (bytes.some((b) => !(b >= 0 && b <= 255))) return undefined;
  const key = Buffer.from(bytes).toString('utf8');
  return encodeKey(key) === encoded ? key : undefined;
}

/**
 * The journal key names of one actor type in a namespace: a SCAN pattern, and
 * a parser of the names it finds (undefined for one that is not a journal of
 * this type). Namespace and type names are `[a-z0-9_-]`: safe in a glob and a regex.
 */
export function journalKeys(namespace: string, type: string): { pattern: string; parse: (name: string) => { partition: number; ref: string; encoded: string } | undefined } {
  const name = new RegExp(`^\\{${namespace}:(\\d+)\\}:j:(${type}:([^:{}]*))$`);
  return {
    pattern: `{${namespace}:*}:j:${type}:*`,
    parse: (n) => {
      const m = name.exec(n);
      return m ? { partition: Number(m[1]), ref: m[2]!, encoded: m[3]! } : undefined;
    },
  };
}

/** `<type>:<encoded key>`: an actor's place inside its partition's keys. */
export function actorRef(type: string, key: string): string {
  return `${type}:${encodeKey(key)}`;
}

/** The de-dup record of an event: ids are scoped to their target actor. */
export function dedupMember(ref: string, eventId: string): string {
  return `${ref}|${eventId}`;
}

/** What a namespace name may be: it sits inside hash tags, SCAN patterns and regexes unescaped. */
export const NAMESPACE_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;

/** SCAN pattern of every key of a namespace: `{ns:p}:…` and `{ns}:…`, not those of a namespace it prefixes. */
export function namespaceKeysPattern(namespace: string): string {
  return `{${namespace}[:}]*`;
}

export function namespaceMetaKey(namespace: string): string {
  return `{${namespace}}:meta`;
}
