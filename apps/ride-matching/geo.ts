/** Coordinates, distances and the demo city. */

export interface LatLng {
  lat: number;
  lng: number;
}

/**
 * Redis geo indexes hold latitudes within ±85.05112878° (Web Mercator); the
 * API accepts exactly the coordinates Redis can index.
 */
export const MAX_LAT = 85.05112878;
export const MAX_LNG = 180;

const EARTH_RADIUS_KM = 6372.797560856; // the radius Redis uses for GEODIST

/** Great-circle distance (haversine), in km. */
export function distanceKm(a: LatLng, b: LatLng): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLng = (b.lng - a.lng) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLng / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** A rectangle of the map: the simulator's city and the page's view. */
export interface BoundingBox {
  south: number;
  west: number;
  north: number;
  east: number;
}

/** The demo city: about 13 × 13 km (centered on Berlin's coordinates; the page draws no real streets). */
export const CITY: BoundingBox = { south: 52.46, west: 13.3, north: 52.58, east: 13.5 };

export function inBox(p: LatLng, box: BoundingBox): boolean {
  return p.lat >= box.south && p.lat <= box.north && p.lng >= box.west && p.lng <= box.east;
}

/** The point `fraction` (0..1) of the way from a to b (fine for city distances). */
export function along(a: LatLng, b: LatLng, fraction: number): LatLng {
  const f = Math.max(0, Math.min(1, fraction));
  return { lat: a.lat + (b.lat - a.lat) * f, lng: a.lng + (b.lng - a.lng) * f };
}

/** Rounded to 6 decimals (about 10 cm): what the actors store. */
export function round6(p: LatLng): LatLng {
  return { lat: Math.round(p.lat * 1e6) / 1e6, lng: Math.round(p.lng * 1e6) / 1e6 };
}
