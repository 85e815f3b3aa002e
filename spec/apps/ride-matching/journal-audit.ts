/**
 * Reads the ride-matching journals back and checks them against each other:
 * each key's journal is replayed through its machine with XState's pure
 * `transition` (the same rule the engine uses, without the engine), and the
 * histories of drivers and rides are compared.
 */
import { initialTransition, transition, type AnyMachineSnapshot, type AnyStateMachine } from 'xstate';
import type { JournalEntry } from '../../../index';
import { driverMachine, type DriverContext } from '../../../apps/ride-matching/driver-machine';
import { rideMachine, rideStatus, TERMINAL_RIDE_STATUSES, type RideContext, type RideStatus } from '../../../apps/ride-matching/ride-machine';

interface Step<C> {
  entry: JournalEntry;
  value: unknown;
  context: C;
}

function replaySteps<C>(machine: AnyStateMachine, key: string, journal: JournalEntry[]): Step<C>[] {
  let [snap] = initialTransition(machine, { key }) as [AnyMachineSnapshot, unknown];
  return journal.map((entry) => {
    [snap] = transition(machine, snap, entry.event as never) as [AnyMachineSnapshot, unknown];
    return { entry, value: snap.value, context: snap.context as C };
  });
}

export interface Trip {
  rideId: string;
  /** Seq and event time of the accept that started it. */
  fromSeq: number;
  acceptTs: number;
  /** Seq and event time of the release that ended it (null: still on it). */
  toSeq: number | null;
  endTs: number | null;
  endReason: string | null;
}

export interface DriverHistory {
  driverId: string;
  seq: number;
  trips: Trip[];
  /** Offers received (mail from rides), by ride id: how many. */
  offersReceived: Map<string, number>;
  value: unknown;
  context: DriverContext;
  problems: string[];
}

export function driverHistory(driverId: string, journal: JournalEntry[]): DriverHistory {
  const h: DriverHistory = { driverId, seq: journal.length, trips: [], offersReceived: new Map(), value: 'offline', context: undefined as unknown as DriverContext, problems: [] };
  let prev: Step<DriverContext> | undefined;
  journal.forEach((e, i) => {
    if (e.seq !== i + 1) h.problems.push(`driver ${driverId}: journal seq ${e.seq} at position ${i + 1}`);
  });
  for (const step of replaySteps<DriverContext>(driverMachine, driverId, journal)) {
    const ev = step.entry.event as { type: string; rideId?: string; reason?: string };
    if (ev.type === 'offer') h.offersReceived.set(ev.rideId!, (h.offersReceived.get(ev.rideId!) ?? 0) + 1);
    const was = prev?.value;
    if (was !== 'onTrip' && step.value === 'onTrip') {
      const open = h.trips.find((t) => t.toSeq === null);
      if (open) h.problems.push(`driver ${driverId}: trip for ${step.context.rideId} began at seq ${step.entry.seq} while trip ${open.rideId} was open`);
      if (ev.type !== 'accept' || ev.rideId !== prev?.context.offer?.rideId) h.problems.push(`driver ${driverId}: on a trip at seq ${step.entry.seq} by ${ev.type} ${ev.rideId}, not by accepting the offer it held (${prev?.context.offer?.rideId})`);
      h.trips.push({ rideId: step.context.rideId!, fromSeq: step.entry.seq, acceptTs: step.entry.ts, toSeq: null, endTs: null, endReason: null });
    } else if (was === 'onTrip' && step.value !== 'onTrip') {
      const t = h.trips[h.trips.length - 1]!;
      Object.assign(t, { toSeq: step.entry.seq, endTs: step.entry.ts, endReason: ev.reason ?? ev.type });
    }
    prev = step;
  }
  h.value = prev?.value ?? 'offline';
  h.context = prev?.context ?? (undefined as unknown as DriverContext);
  return h;
}

export interface RideHistory {
  rideId: string;
  status: RideStatus;
  context: RideContext;
  /** Times the ride entered `matched` (must be 0 or 1). */
  matches: number;
  matchedDriver: string | null;
  /** Drivers whose `offer.accepted` is in the journal, in order. */
  acceptedFrom: string[];
}

export function rideHistory(rideId: string, journal: JournalEntry[]): RideHistory {
  const h: RideHistory = { rideId, status: 'requested', context: undefined as unknown as RideContext, matches: 0, matchedDriver: null, acceptedFrom: [] };
  let prev: Step<RideContext> | undefined;
  for (const step of replaySteps<RideContext>(rideMachine, rideId, journal)) {
    const ev = step.entry.event as { type: string; driverId?: string };
    if (ev.type === 'offer.accepted') h.acceptedFrom.push(ev.driverId!);
    if (prev?.value !== 'matched' && step.value === 'matched') {
      h.matches++;
      h.matchedDriver = step.context.driverId;
    }
    prev = step;
  }
  if (prev) {
    h.status = rideStatus(prev.value);
    h.context = prev.context;
  }
  return h;
}

export interface AuditResult {
  problems: string[];
  /** Successful accepts in the driver journals. */
  acceptedOffers: number;
  /** Rides that were matched (each exactly once). */
  matchedRides: number;
  /** Accepts that crossed the ride's end (cancel, expiry): the driver was released. */
  crossedAccepts: number;
  /** Offers received by drivers (mail), which must equal the offers the rides counted. */
  offersDelivered: number;
  statuses: Record<string, number>;
}

/**
 * The invariants:
 * - no driver was ever assigned two overlapping rides: per driver, each trip
 *   begins by accepting the offer it held, after the previous trip ended
 *   (journal order and event time);
 * - every accepted offer led to exactly one match: the ride journaled that
 *   accept once, and was matched to that driver once, at that accept's time —
 *   or had already ended, and the driver was released;
 * - every ride matched was matched once, to a driver whose journal has that trip;
 * - every offer a ride counted reached its driver exactly once;
 * - at rest (`atRest`): every ride is terminal, every driver available with no offer or trip.
 */
export function audit(drivers: DriverHistory[], rides: RideHistory[], atRest: boolean): AuditResult {
  const problems: string[] = [];
  const problem = (p: string) => {
    if (problems.length < 30) problems.push(p);
  };
  const rideById = new Map(rides.map((r) => [r.rideId, r]));
  let acceptedOffers = 0;
  let crossedAccepts = 0;
  let offersDelivered = 0;
  const offersByRide = new Map<string, number>();
  const tripsByRide = new Map<string, { driverId: string; trip: Trip }[]>();

  for (const d of drivers) {
    d.problems.forEach(problem);
    for (const [rideId, n] of d.offersReceived) {
      offersDelivered += n;
      offersByRide.set(rideId, (offersByRide.get(rideId) ?? 0) + n);
    }
    d.trips.forEach((t, i) => {
      acceptedOffers++;
      const list = tripsByRide.get(t.rideId) ?? [];
      list.push({ driverId: d.driverId, trip: t });
      tripsByRide.set(t.rideId, list);
      const prev = d.trips[i - 1];
      if (prev && (prev.toSeq === null || prev.toSeq > t.fromSeq || (prev.endTs ?? Infinity) > t.acceptTs)) {
        problem(`driver ${d.driverId}: trip ${t.rideId} (seq ${t.fromSeq}, ts ${t.acceptTs}) overlaps trip ${prev.rideId} (seq ${prev.fromSeq}..${prev.toSeq}, ended ts ${prev.endTs})`);
      }
      const r = rideById.get(t.rideId);
      if (!r) return problem(`driver ${d.driverId}: trip for unknown ride ${t.rideId}`);
      const accepts = r.acceptedFrom.filter((x) => x === d.driverId).length;
      if (accepts !== 1) problem(`ride ${t.rideId}: journaled ${accepts} offer.accepted from ${d.driverId} (1 expected)`);
      if (r.matchedDriver === d.driverId) {
        if (r.context.matchedTs !== t.acceptTs) problem(`ride ${t.rideId}: matched at ts ${r.context.matchedTs}, driver ${d.driverId} accepted at ts ${t.acceptTs}`);
      } else {
        crossedAccepts++;
        if (t.toSeq === null) problem(`driver ${d.driverId}: accepted ride ${t.rideId}, which was not matched to it (${r.status}), and was never released`);
      }
    });
    if (atRest && (d.value !== 'available' && d.value !== 'offline')) problem(`driver ${d.driverId}: ${String(d.value)} at rest (offer ${d.context.offer?.rideId}, ride ${d.context.rideId})`);
  }

  let matchedRides = 0;
  const statuses: Record<string, number> = {};
  for (const r of rides) {
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    if (r.matches > 1) problem(`ride ${r.rideId}: matched ${r.matches} times`);
    if (r.matches >= 1) {
      matchedRides++;
      const trips = tripsByRide.get(r.rideId) ?? [];
      const mine = trips.filter((t) => t.driverId === r.matchedDriver);
      if (mine.length !== 1) problem(`ride ${r.rideId}: matched to ${r.matchedDriver}, whose journal has ${mine.length} trips for it`);
    }
    const delivered = offersByRide.get(r.rideId) ?? 0;
    if (delivered !== r.context.offers) problem(`ride ${r.rideId}: made ${r.context.offers} offers, drivers received ${delivered}`);
    if (atRest && !TERMINAL_RIDE_STATUSES.includes(r.status)) problem(`ride ${r.rideId}: ${r.status} at rest`);
  }
  return { problems, acceptedOffers, matchedRides, crossedAccepts, offersDelivered, statuses };
}
