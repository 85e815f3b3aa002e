import { assign, emit, not, setup } from 'xstate';
import { defineActor, sendToActor } from '../../index';
import type { LatLng } from './geo';

/**
 * The ride actor (key = ride id).
 *
 *   requested ──request──► searching ─────────────────────────────► matched ──start──► inProgress ──complete──► completed
 *                           ├ matching  (asks for candidates)      ▲
 *                           ├ waiting   (none found; retry timer)  │ offer.accepted
 *                           └ offered   (one driver holds the offer)
 *   searching ──match timeout──► expired;   requested/searching/matched ──cancel──► cancelled
 *
 * Matching: entering `matching` emits `ride.matching` (pickup, radius, drivers
 * to skip). The dispatcher (dispatcher.ts) answers with a `candidates` event:
 * the nearest available drivers from the geo index, nearest first. The ride
 * offers itself to the first candidate (mail `offer` to the driver); the
 * driver answers `offer.refused` (not available), `offer.declined`,
 * `offer.timeout` (its durable offer timer) or `offer.accepted`. On anything
 * but an accept the ride offers to the next candidate, and when the list is
 * used up it searches again; a search with no usable candidate sends the ride
 * to `waiting`, from which a retry timer (or a driver who becomes available
 * nearby: the dispatcher pushes it as a candidate) brings it back.
 *
 * `searching` carries the match deadline (`matchTimeoutMs` after the request,
 * a durable timer): when it fires before an accept the ride expires and the
 * driver holding its offer, if any, is released. A driver whose accept
 * crosses a cancel or the expiry is released too (`offer.accepted` arriving
 * after the ride left `offered` answers `release`). Every setting comes in
 * the `request` event (journaled), so replay never depends on configuration.
 */

export interface RideSettings {
  /** Search radius around the pickup. */
  radiusKm: number;
  /** How long a driver may hold an offer (the driver's timer). */
  offerTimeoutMs: number;
  /** No accepted offer this long after the request: the ride expires. */
  matchTimeoutMs: number;
  /** A search that found nobody is retried after this long. */
  retryMs: number;
}

export interface RideContext {
  rideId: string;
  riderId: string | null;
  pickup: LatLng | null;
  dropoff: LatLng | null;
  settings: RideSettings;
  requestedTs: number;
  /** Number of the current search; `candidates` answers carry it. */
  attempt: number;
  /** Candidates of the last answer not offered yet, nearest first. */
  candidates: string[];
  /** Drivers who declined or let the offer lapse: never offered again. */
  passed: string[];
  /** Drivers who were not available during this round of searching: skipped until the next retry. */
  busy: string[];
  /** The driver holding the offer (offered) or the trip (matched and after). */
  driverId: string | null;
  offers: number;
  matchedTs: number | null;
  startedTs: number | null;
  endedTs: number | null;
  /** Why the ride ended (completed, cancelled, expired: …). */
  endReason: string | null;
  rejection: { eventId: string; message: string } | null;
}

type Stamped = { id: string; ts: number };
export type RideEvent = Stamped &
  (
    | ({ type: 'request'; riderId: string; pickup: LatLng; dropoff: LatLng } & RideSettings)
    | { type: 'candidates'; attempt: number; drivers: string[] }
    | { type: 'offer.refused'; driverId: string; reason?: string }
    | { type: 'offer.declined'; driverId: string }
    | { type: 'offer.timeout'; driverId: string }
    | { type: 'offer.accepted'; driverId: string }
    | { type: 'cancel' }
    | { type: 'start' }
    | { type: 'complete' }
  );

export type RideStatus = 'requested' | 'matching' | 'offered' | 'matched' | 'in_progress' | 'completed' | 'cancelled' | 'expired';

export const TERMINAL_RIDE_STATUSES: readonly RideStatus[] = ['completed', 'cancelled', 'expired'];

/** The status the API shows, from the machine's state value. */
export function rideStatus(value: unknown): RideStatus {
  if (typeof value === 'object' && value !== null && 'searching' in value) {
    return (value as { searching: string }).searching === 'offered' ? 'offered' : 'matching';
  }
  return value === 'inProgress' ? 'in_progress' : (value as RideStatus);
}

type Ev<T extends RideEvent['type']> = Extract<RideEvent, { type: T }>;

const usable = (context: RideContext, drivers: readonly string[]) => drivers.filter((d) => !context.passed.includes(d) && !context.busy.includes(d));

/** The actions of offering the ride to the first usable candidate (`candidates` already holds the new list). */
const offerNext = [
  assign<RideContext, RideEvent, undefined, RideEvent, never>(({ context }) => {
    const [next, ...rest] = usable(context, context.candidates);
    return { driverId: next!, candidates: rest, offers: context.offers + 1 };
  }),
  sendToActor<RideContext, RideEvent, undefined, RideEvent, never>(
    'driver',
    ({ context }) => context.driverId!,
    ({ context }) => ({ type: 'offer', rideId: context.rideId, pickup: context.pickup!, dropoff: context.dropoff!, timeoutMs: context.settings.offerTimeoutMs }),
  ),
  emit<RideContext, RideEvent, undefined, RideEvent, { type: string }>(({ context }) => ({ type: 'ride.offered', driverId: context.driverId!, offer: context.offers })),
];

/** Tell the driver holding the offer or trip that the ride no longer needs it. */
const releaseDriver = (reason: string) =>
  sendToActor<RideContext, RideEvent, undefined, RideEvent, never>('driver', ({ context }) => context.driverId!, ({ context }) => ({ type: 'release', rideId: context.rideId, reason }));

const expire = [
  assign<RideContext, RideEvent, undefined, RideEvent, never>({
    endedTs: ({ event }) => event.ts,
    endReason: ({ context }) => `expired: no driver accepted within ${context.settings.matchTimeoutMs} ms of the request`,
  }),
  emit<RideContext, RideEvent, undefined, RideEvent, { type: string }>(({ context }) => ({ type: 'ride.expired', driverId: context.driverId, offers: context.offers, reason: context.endReason! })),
];

const cancelBeforeMatch = [
  assign<RideContext, RideEvent, undefined, RideEvent, never>({ endedTs: ({ event }) => event.ts, endReason: 'cancelled: by the rider before a match', rejection: null }),
  emit<RideContext, RideEvent, undefined, RideEvent, { type: string }>(({ context }) => ({ type: 'ride.cancelled', driverId: context.driverId, reason: context.endReason! })),
];

const reject = (message: (context: RideContext) => string) =>
  assign<RideContext, RideEvent, undefined, RideEvent, never>({ rejection: ({ context, event }) => ({ eventId: event.id, message: message(context) }) });

const refusal = (what: string, allowed: string) => (context: RideContext) =>
  `ride ${context.rideId} is ${rideStatusOf(context)}; only a ${allowed} ride can be ${what}`;

/** The status for messages, from the context alone (the state value is not at hand in an action). */
function rideStatusOf(context: RideContext): string {
  if (context.endReason) return context.endReason.split(':')[0]!;
  if (context.startedTs !== null) return 'in progress';
  if (context.matchedTs !== null) return 'matched';
  return context.pickup ? 'searching for a driver' : 'not requested';
}

export const rideMachine = setup({
  types: {
    context: {} as RideContext,
    events: {} as RideEvent,
    input: {} as { key: string },
  },
  guards: {
    fromOfferedDriver: ({ context, event }) => 'driverId' in event && event.driverId === context.driverId,
    holdsTheTrip: ({ context, event }) => context.matchedTs !== null && context.endedTs === null && 'driverId' in event && event.driverId === context.driverId,
    offerOut: ({ context }) => context.driverId !== null,
    currentAttempt: ({ context, event }) => (event as Ev<'candidates'>).attempt === context.attempt,
    hasCandidate: ({ context }) => usable(context, context.candidates).length > 0,
  },
  delays: {
    matchTimeout: ({ context }) => context.settings.matchTimeoutMs,
    retry: ({ context }) => context.settings.retryMs,
  },
}).createMachine({
  id: 'ride',
  context: ({ input }) => ({
    rideId: input.key,
    riderId: null,
    pickup: null,
    dropoff: null,
    settings: { radiusKm: 0, offerTimeoutMs: 0, matchTimeoutMs: 0, retryMs: 0 },
    requestedTs: 0,
    attempt: 0,
    candidates: [],
    passed: [],
    busy: [],
    driverId: null,
    offers: 0,
    matchedTs: null,
    startedTs: null,
    endedTs: null,
    endReason: null,
    rejection: null,
  }),
  initial: 'requested',
  // Defaults for every state; a state's own handlers come first.
  on: {
    // An accept that crossed a cancel, the expiry or another driver's accept: that driver is freed.
    'offer.accepted': {
      guard: not('holdsTheTrip'),
      actions: sendToActor('driver', ({ event }) => (event as Ev<'offer.accepted'>).driverId, ({ context }) => ({ type: 'release', rideId: context.rideId, reason: 'the ride no longer needs a driver' })),
    },
    cancel: { actions: reject(refusal('cancelled', 'requested, matching, offered or matched')) },
    start: { actions: reject(refusal('started', 'matched')) },
    complete: { actions: reject(refusal('completed', 'started (in_progress)')) },
  },
  states: {
    requested: {
      on: {
        request: {
          target: 'searching',
          actions: [
            assign(({ event }) => ({
              riderId: event.riderId,
              pickup: event.pickup,
              dropoff: event.dropoff,
              requestedTs: event.ts,
              settings: { radiusKm: event.radiusKm, offerTimeoutMs: event.offerTimeoutMs, matchTimeoutMs: event.matchTimeoutMs, retryMs: event.retryMs },
            })),
            emit(({ event }) => ({ type: 'ride.requested', riderId: event.riderId, pickup: event.pickup, dropoff: event.dropoff })),
          ],
        },
      },
    },
    searching: {
      initial: 'matching',
      // In `searching`, driverId is set exactly while a driver holds the offer: that driver is released.
      after: {
        matchTimeout: [
          { guard: 'offerOut', target: 'expired', actions: [...expire, releaseDriver('the ride expired')] },
          { target: 'expired', actions: expire },
        ],
      },
      on: {
        cancel: [
          { guard: 'offerOut', target: 'cancelled', actions: [...cancelBeforeMatch, releaseDriver('the ride was cancelled')] },
          { target: 'cancelled', actions: cancelBeforeMatch },
        ],
      },
      states: {
        matching: {
          entry: [
            assign({ attempt: ({ context }) => context.attempt + 1, candidates: [], driverId: null }),
            emit(({ context }) => ({
              type: 'ride.matching',
              attempt: context.attempt,
              pickup: context.pickup!,
              radiusKm: context.settings.radiusKm,
              exclude: [...context.passed, ...context.busy],
            })),
          ],
          on: {
            candidates: [
              { guard: 'currentAttempt', actions: assign({ candidates: ({ event }) => event.drivers }) },
              // Not an answer to this search: ignored.
              { actions: [] },
            ],
          },
          always: [
            { guard: 'hasCandidate', target: 'offered', actions: offerNext },
            // The answer came and held nobody usable.
            { guard: ({ context, event }) => event.type === 'candidates' && (event as Ev<'candidates'>).attempt === context.attempt, target: 'waiting' },
          ],
        },
        waiting: {
          entry: emit(({ context }) => ({ type: 'ride.waiting', attempt: context.attempt, pickup: context.pickup!, radiusKm: context.settings.radiusKm })),
          after: {
            retry: { target: 'matching', actions: assign({ busy: [] }) },
          },
          on: {
            // Pushed by the dispatcher when a driver became available nearby: welcome whatever the attempt,
            // and no longer busy.
            candidates: {
              actions: assign({
                candidates: ({ event }) => event.drivers,
                busy: ({ context, event }) => context.busy.filter((d) => !event.drivers.includes(d)),
              }),
            },
          },
          always: { guard: 'hasCandidate', target: 'offered', actions: offerNext },
        },
        offered: {
          on: {
            'offer.accepted': {
              guard: 'fromOfferedDriver',
              target: '#ride.matched',
              actions: [
                assign({ matchedTs: ({ event }) => event.ts, candidates: [] }),
                emit(({ context }) => ({
                  type: 'ride.matched',
                  driverId: context.driverId!,
                  matchMs: context.matchedTs! - context.requestedTs,
                  offers: context.offers,
                  pickup: context.pickup!,
                  dropoff: context.dropoff!,
                })),
              ],
            },
            'offer.refused': { guard: 'fromOfferedDriver', target: 'next', actions: assign({ busy: ({ context }) => [...context.busy, context.driverId!] }) },
            'offer.declined': { guard: 'fromOfferedDriver', target: 'next', actions: assign({ passed: ({ context }) => [...context.passed, context.driverId!] }) },
            'offer.timeout': { guard: 'fromOfferedDriver', target: 'next', actions: assign({ passed: ({ context }) => [...context.passed, context.driverId!] }) },
          },
        },
        /** Transient: the next candidate, or a new search. */
        next: {
          entry: emit(({ context, event }) => ({ type: 'ride.offer.failed', driverId: context.driverId!, outcome: event.type.slice('offer.'.length) })),
          always: [
            { guard: 'hasCandidate', target: 'offered', actions: offerNext },
            { target: 'matching' },
          ],
        },
      },
    },
    matched: {
      on: {
        start: {
          target: 'inProgress',
          actions: [assign({ startedTs: ({ event }) => event.ts, rejection: null }), emit(({ context }) => ({ type: 'ride.started', driverId: context.driverId! }))],
        },
        cancel: {
          target: 'cancelled',
          actions: [
            assign({ endedTs: ({ event }) => event.ts, endReason: 'cancelled: by the rider after the match' }),
            releaseDriver('cancelled'),
            emit(({ context }) => ({ type: 'ride.cancelled', driverId: context.driverId, reason: context.endReason })),
          ],
        },
      },
    },
    inProgress: {
      on: {
        complete: {
          target: 'completed',
          actions: [
            assign({ endedTs: ({ event }) => event.ts, endReason: 'completed', rejection: null }),
            releaseDriver('completed'),
            emit(({ context }) => ({ type: 'ride.completed', driverId: context.driverId!, tripMs: context.endedTs! - context.startedTs! })),
          ],
        },
      },
    },
    completed: {},
    cancelled: {},
    expired: {},
  },
});

export const ride = defineActor({ type: 'ride', machine: rideMachine, snapshotEvery: 25, ttlMs: 24 * 3_600_000 });
