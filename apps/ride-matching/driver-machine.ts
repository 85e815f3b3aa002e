import { assign, emit, setup } from 'xstate';
import { defineActor, sendToActor } from '../../index';
import type { LatLng } from './geo';

/**
 * The driver actor (key = driver id).
 *
 *   offline ──online──► available ──offer──► offered ──accept──► onTrip ──release──► available
 *                          ▲                  │ decline / offer timeout / release        │
 *                          └──────────────────┘ (the ride is told)                       │
 *   location updates in every state; offline from available or offered.
 *
 * The driver decides whether it can take an offer: it holds at most one offer
 * or one trip, and its events are applied one at a time, so two rides can
 * never get the same driver. Every answer to a ride is actor-to-actor mail
 * (exactly once after the commit):
 *
 *   offer      (from a ride)  → offered, or `offer.refused` to the ride when not available
 *   accept     (HTTP)         → onTrip, `offer.accepted` to the ride
 *   decline    (HTTP)         → available, `offer.declined` to the ride
 *   the offer's durable timer → available, `offer.timeout` to the ride
 *   release    (from a ride)  → available (the ride completed, was cancelled, expired, or gave the offer up)
 *
 * Commands it refuses (accept without that offer, offline on a trip, …)
 * change nothing but `rejection`, which the HTTP layer turns into a 409 with
 * its message. Outputs (`driver.*`) feed the geo index and the live page.
 */

export interface DriverOffer {
  rideId: string;
  pickup: LatLng;
  dropoff: LatLng;
  timeoutMs: number;
  /** Event time the offer lapses at. */
  expiresTs: number;
}

export interface DriverContext {
  driverId: string;
  location: LatLng | null;
  offer: DriverOffer | null;
  /** The ride of the trip in hand. */
  rideId: string | null;
  trips: number;
  /** The last command refused, by event id: HTTP answers it with 409 and this message. */
  rejection: { eventId: string; message: string } | null;
}

type Stamped = { id: string; ts: number };
export type DriverEvent = Stamped &
  (
    | { type: 'online'; lat: number; lng: number }
    | { type: 'offline' }
    | { type: 'location'; lat: number; lng: number }
    | { type: 'accept'; rideId: string }
    | { type: 'decline'; rideId: string }
    | { type: 'offer'; rideId: string; pickup: LatLng; dropoff: LatLng; timeoutMs: number }
    | { type: 'release'; rideId: string; reason: string }
  );

/** The statuses the API shows, from the machine's state value. */
export type DriverStatus = 'offline' | 'available' | 'offered' | 'on_trip';

export function driverStatus(value: unknown): DriverStatus {
  return value === 'onTrip' ? 'on_trip' : (value as DriverStatus);
}

type Ev<T extends DriverEvent['type']> = Extract<DriverEvent, { type: T }>;
const loc = (e: { lat: number; lng: number }): LatLng => ({ lat: e.lat, lng: e.lng });

/** A driver output: status and position always, so one output is enough to place the driver. */
function out(type: string, status: DriverStatus, context: DriverContext, extra: Record<string, unknown> = {}) {
  return { type, status, lat: context.location?.lat ?? null, lng: context.location?.lng ?? null, ...extra };
}

/** A location update (or `online` when already online): the new position, as a `driver.moved` output. */
const moved = (status: DriverStatus) => ({
  actions: [
    assign<DriverContext, DriverEvent, undefined, DriverEvent, never>({ location: ({ event }) => loc(event as Ev<'location'>) }),
    emit<DriverContext, DriverEvent, undefined, DriverEvent, { type: string }>(({ context }) => out('driver.moved', status, context)),
  ],
});

export const driverMachine = setup({
  types: {
    context: {} as DriverContext,
    events: {} as DriverEvent,
    input: {} as { key: string },
  },
  guards: {
    isTheOffer: ({ context, event }) => 'rideId' in event && context.offer?.rideId === event.rideId,
    isTheTrip: ({ context, event }) => 'rideId' in event && context.rideId === event.rideId,
  },
  delays: {
    offerTimeout: ({ context }) => context.offer?.timeoutMs ?? 0,
  },
}).createMachine({
  id: 'driver',
  context: ({ input }) => ({ driverId: input.key, location: null, offer: null, rideId: null, trips: 0, rejection: null }),
  initial: 'offline',
  // Defaults for every state; a state's own handlers come first.
  on: {
    offer: {
      // Not available: the ride is told at once and asks the next driver.
      actions: sendToActor(
        'ride',
        ({ event }) => (event as Ev<'offer'>).rideId,
        ({ context }) => ({ type: 'offer.refused', driverId: context.driverId, reason: context.rideId ? 'on a trip' : context.offer ? 'holds another offer' : 'offline' }),
      ),
    },
    accept: {
      actions: assign({
        rejection: ({ context, event }) => ({
          eventId: event.id,
          message: context.offer
            ? `driver ${context.driverId} holds an offer for ride ${context.offer.rideId}, not for ride ${(event as Ev<'accept'>).rideId}`
            : context.rideId
              ? `driver ${context.driverId} is on ride ${context.rideId}; it has no offer for ride ${(event as Ev<'accept'>).rideId}`
              : `driver ${context.driverId} has no pending offer (for ride ${(event as Ev<'accept'>).rideId} or any other): it expired, was released, or never came`,
        }),
      }),
    },
    decline: {
      actions: assign({
        rejection: ({ context, event }) => ({
          eventId: event.id,
          message: context.rideId
            ? `driver ${context.driverId} is on ride ${context.rideId}; a trip cannot be declined (cancel the ride instead)`
            : `driver ${context.driverId} has no pending offer for ride ${(event as Ev<'decline'>).rideId}`,
        }),
      }),
    },
  },
  states: {
    offline: {
      on: {
        location: moved('offline'),
        online: {
          target: 'available',
          actions: [assign({ location: ({ event }) => loc(event), rejection: null }), emit(({ context }) => out('driver.available', 'available', context, { reason: 'online' }))],
        },
      },
    },
    available: {
      on: {
        location: moved('available'),
        online: moved('available'),
        offline: { target: 'offline', actions: emit(({ context }) => out('driver.offline', 'offline', context)) },
        offer: {
          target: 'offered',
          actions: [
            assign({
              offer: ({ event }) => ({ rideId: event.rideId, pickup: event.pickup, dropoff: event.dropoff, timeoutMs: event.timeoutMs, expiresTs: event.ts + event.timeoutMs }),
            }),
            emit(({ context }) => out('driver.offered', 'offered', context, { rideId: context.offer!.rideId, pickup: context.offer!.pickup, expiresTs: context.offer!.expiresTs })),
          ],
        },
      },
    },
    offered: {
      after: {
        offerTimeout: {
          target: 'available',
          actions: [
            sendToActor('ride', ({ context }) => context.offer!.rideId, ({ context }) => ({ type: 'offer.timeout', driverId: context.driverId })),
            emit(({ context }) => out('driver.available', 'available', context, { reason: 'offer timeout', rideId: context.offer!.rideId })),
            assign({ offer: null }),
          ],
        },
      },
      on: {
        location: moved('offered'),
        online: moved('offered'),
        accept: {
          guard: 'isTheOffer',
          target: 'onTrip',
          actions: [
            assign({ rideId: ({ context }) => context.offer!.rideId, offer: null, rejection: null }),
            sendToActor('ride', ({ context }) => context.rideId!, ({ context }) => ({ type: 'offer.accepted', driverId: context.driverId })),
            emit(({ context }) => out('driver.busy', 'on_trip', context, { rideId: context.rideId })),
          ],
        },
        decline: {
          guard: 'isTheOffer',
          target: 'available',
          actions: [
            sendToActor('ride', ({ context }) => context.offer!.rideId, ({ context }) => ({ type: 'offer.declined', driverId: context.driverId })),
            emit(({ context }) => out('driver.available', 'available', context, { reason: 'declined', rideId: context.offer!.rideId })),
            assign({ offer: null, rejection: null }),
          ],
        },
        release: {
          guard: 'isTheOffer',
          target: 'available',
          actions: [
            emit(({ context, event }) => out('driver.available', 'available', context, { reason: `offer withdrawn: ${event.reason}`, rideId: context.offer!.rideId })),
            assign({ offer: null }),
          ],
        },
        offline: {
          target: 'offline',
          actions: [
            sendToActor('ride', ({ context }) => context.offer!.rideId, ({ context }) => ({ type: 'offer.declined', driverId: context.driverId })),
            emit(({ context }) => out('driver.offline', 'offline', context, { rideId: context.offer!.rideId })),
            assign({ offer: null }),
          ],
        },
      },
    },
    onTrip: {
      on: {
        location: moved('on_trip'),
        online: moved('on_trip'),
        // A repeated accept of the trip in hand is answered as the first one was.
        accept: { guard: 'isTheTrip' },
        release: {
          guard: 'isTheTrip',
          target: 'available',
          actions: [
            emit(({ context, event }) => out('driver.available', 'available', context, { reason: event.reason, rideId: context.rideId })),
            assign({ rideId: null, trips: ({ context, event }) => context.trips + (event.reason === 'completed' ? 1 : 0) }),
          ],
        },
        offline: {
          actions: assign({
            rejection: ({ context, event }) => ({ eventId: event.id, message: `driver ${context.driverId} is on ride ${context.rideId}: complete or cancel the ride before going offline` }),
          }),
        },
      },
    },
  },
});

export const driver = defineActor({ type: 'driver', machine: driverMachine, snapshotEvery: 50 });
