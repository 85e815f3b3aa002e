// The live page: GET /dashboard for the current picture, then server-sent events
// from /events (actor outputs, counters, worker changes). Plain JS, no libraries,
// nothing loaded from elsewhere: it works offline.
'use strict';

const STATUS_COLOR = { available: '#3ddc84', offered: '#ffb020', on_trip: '#4aa3ff', offline: '#5b6673' };
const WORKER_COLORS = ['#3ddc84', '#4aa3ff', '#ffb020', '#c58cff', '#ff7eb6', '#5ee7df', '#f9f871', '#ff9f68'];
const MATCH_FADE_MS = 3000;
const END_FADE_MS = 1500;

const state = {
  city: null,
  partitions: 0,
  drivers: new Map(), // id -> { status, lat, lng, rideId, x, y (drawn position) }
  rides: new Map(), // id -> { status, pickup, dropoff, driverId, waiting }
  workers: [],
  flashes: [], // { kind: 'match' | 'expired' | 'cancelled' | 'completed', from, to, at }
  matchesDrawn: 0,
  authKey: sessionStorage.getItem('rm-api-key') || '',
};
window.__rideMatching = state;

const $ = (id) => document.getElementById(id);
const canvas = $('map');
const ctx = canvas.getContext('2d');

// ---- projection: the city's bounding box onto the canvas (equirectangular, aspect kept)

let view = { scale: 1, ox: 0, oy: 0, w: 0, h: 0 };
function layout() {
  const rect = canvas.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(rect.width * dpr));
  canvas.height = Math.max(1, Math.round(rect.height * dpr));
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const c = state.city;
  if (!c) return;
  const kx = Math.cos(((c.south + c.north) / 2) * (Math.PI / 180));
  const worldW = (c.east - c.west) * kx;
  const worldH = c.north - c.south;
  const pad = 24;
  const scale = Math.min((rect.width - 2 * pad) / worldW, (rect.height - 2 * pad) / worldH);
  view = { scale, kx, ox: (rect.width - worldW * scale) / 2, oy: (rect.height - worldH * scale) / 2, w: rect.width, h: rect.height };
}
function project(p) {
  const c = state.city;
  return { x: view.ox + (p.lng - c.west) * view.kx * view.scale, y: view.oy + (c.north - p.lat) * view.scale };
}
window.addEventListener('resize', layout);

// ---- drawing

function drawCity() {
  const c = state.city;
  const tl = project({ lat: c.north, lng: c.west });
  const br = project({ lat: c.south, lng: c.east });
  ctx.fillStyle = '#121c27';
  ctx.fillRect(tl.x, tl.y, br.x - tl.x, br.y - tl.y);
  // Parks, a river and a street grid: decoration, so the map reads as a city.
  ctx.fillStyle = '#15291f';
  for (const [a, b, w, h] of [[0.12, 0.2, 0.14, 0.1], [0.62, 0.64, 0.12, 0.16], [0.4, 0.08, 0.08, 0.07], [0.78, 0.22, 0.1, 0.08]]) {
    ctx.fillRect(tl.x + a * (br.x - tl.x), tl.y + b * (br.y - tl.y), w * (br.x - tl.x), h * (br.y - tl.y));
  }
  ctx.strokeStyle = '#1d3550';
  ctx.lineWidth = 10;
  ctx.beginPath();
  ctx.moveTo(tl.x, tl.y + 0.55 * (br.y - tl.y));
  ctx.bezierCurveTo(tl.x + 0.3 * (br.x - tl.x), tl.y + 0.35 * (br.y - tl.y), tl.x + 0.6 * (br.x - tl.x), tl.y + 0.75 * (br.y - tl.y), br.x, tl.y + 0.45 * (br.y - tl.y));
  ctx.stroke();
  ctx.strokeStyle = '#1b2633';
  ctx.lineWidth = 1;
  const step = 0.005; // about 0.5 km
  ctx.beginPath();
  for (let lat = c.south; lat <= c.north + 1e-9; lat += step) {
    const a = project({ lat, lng: c.west });
    const b = project({ lat, lng: c.east });
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x, b.y);
  }
  for (let lng = c.west; lng <= c.east + 1e-9; lng += step * 1.6) {
    const a = project({ lat: c.north, lng });
    const b = project({ lat: c.south, lng });
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x, b.y);
  }
  ctx.stroke();
}

function line(a, b, color, width, dash) {
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.setLineDash(dash || []);
  ctx.beginPath();
  ctx.moveTo(a.x, a.y);
  ctx.lineTo(b.x, b.y);
  ctx.stroke();
  ctx.setLineDash([]);
}

function diamond(p, r, color, fill) {
  ctx.beginPath();
  ctx.moveTo(p.x, p.y - r);
  ctx.lineTo(p.x + r, p.y);
  ctx.lineTo(p.x, p.y + r);
  ctx.lineTo(p.x - r, p.y);
  ctx.closePath();
  if (fill) {
    ctx.fillStyle = color;
    ctx.fill();
  } else {
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.stroke();
  }
}

function draw(now) {
  ctx.clearRect(0, 0, view.w, view.h);
  if (!state.city) return requestAnimationFrame(draw);
  drawCity();
  const pulse = 0.5 + 0.5 * Math.sin(now / 250);

  // Rides: waiting riders, offers out, trips.
  for (const r of state.rides.values()) {
    const p = project(r.pickup);
    const d = r.driverId && state.drivers.get(r.driverId);
    if (r.status === 'in_progress') {
      const q = project(r.dropoff);
      line(p, q, 'rgba(74,163,255,0.55)', 1.5, [4, 4]);
      diamond(q, 4, '#4aa3ff', false);
    } else if (r.status === 'matched') {
      if (d) line({ x: d.x, y: d.y }, p, 'rgba(74,163,255,0.8)', 1.5, [2, 3]);
      diamond(p, 5, '#4aa3ff', true);
    } else if (r.status === 'offered') {
      if (d) line({ x: d.x, y: d.y }, p, 'rgba(255,176,32,0.7)', 1, [3, 3]);
      diamond(p, 5, '#ffb020', true);
    } else {
      ctx.globalAlpha = 0.55 + 0.45 * pulse;
      diamond(p, 5, '#ff5d73', true);
      ctx.globalAlpha = 1;
    }
  }

  // Drivers, eased toward their last reported position.
  let drawn = 0;
  for (const d of state.drivers.values()) {
    if (d.lat === null || d.lng === null) continue;
    const target = project(d);
    if (d.x === undefined) {
      d.x = target.x;
      d.y = target.y;
    }
    d.x += (target.x - d.x) * 0.15;
    d.y += (target.y - d.y) * 0.15;
    ctx.beginPath();
    ctx.arc(d.x, d.y, d.status === 'offline' ? 3 : 4.5, 0, Math.PI * 2);
    ctx.fillStyle = STATUS_COLOR[d.status] || '#fff';
    ctx.fill();
    drawn++;
  }
  if (String(drawn) !== document.body.dataset.drivers) document.body.dataset.drivers = String(drawn);

  // Flashes: a match draws a bright line driver → pickup and a ring; endings fade out.
  state.flashes = state.flashes.filter((f) => now - f.at < (f.kind === 'match' ? MATCH_FADE_MS : END_FADE_MS));
  for (const f of state.flashes) {
    const age = (now - f.at) / (f.kind === 'match' ? MATCH_FADE_MS : END_FADE_MS);
    const p = project(f.to);
    ctx.globalAlpha = 1 - age;
    if (f.kind === 'match') {
      if (f.from) line(project(f.from), p, '#ffffff', 2.5);
      ctx.beginPath();
      ctx.arc(p.x, p.y, 6 + 22 * age, 0, Math.PI * 2);
      ctx.strokeStyle = '#ffffff';
      ctx.lineWidth = 2;
      ctx.stroke();
    } else {
      const color = f.kind === 'expired' ? '#ff5d73' : f.kind === 'cancelled' ? '#8899aa' : '#3ddc84';
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(p.x, p.y, 5 + 10 * age, 0, Math.PI * 2);
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
  }
  requestAnimationFrame(draw);
}

// ---- panels

const fmtMs = (ms) => (ms === null || ms === undefined ? '–' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`);

function showStats(s) {
  for (const k of ['requested', 'matched', 'completed', 'expired', 'cancelled']) $(`c-${k}`).textContent = s[k].toLocaleString('en-US');
  $('c-open').textContent = s.openRides.toLocaleString('en-US');
  $('c-p50').textContent = fmtMs(s.p50);
  $('c-p99').textContent = fmtMs(s.p99);
  $('c-offers').textContent = `offers: ${s.offers} · declined ${s.declined} · timed out ${s.timeout} · refused (driver busy) ${s.refused}` + (s.dispatcher === 'standby' ? ' · dispatcher on standby' : '');
  for (const k of Object.keys(STATUS_COLOR)) $(`n-${k}`).textContent = String(s.drivers[k] || 0);
}

function showWorkers() {
  const owner = new Array(state.partitions).fill(null);
  for (const w of state.workers) for (const p of w.partitions) owner[p] = w.slot;
  $('partitions').innerHTML = owner
    .map((slot, p) => (slot === null ? `<span class="none" title="partition ${p}: no owner (lease expiring)">${p}</span>` : `<span style="background:${WORKER_COLORS[slot % WORKER_COLORS.length]}" title="partition ${p}: worker ${slot}">${p}</span>`))
    .join('');
  $('workers').innerHTML = state.workers
    .map((w) => {
      const color = WORKER_COLORS[w.slot % WORKER_COLORS.length];
      const what = w.state === 'down' ? 'down — restarting' : w.state === 'starting' ? 'starting…' : `running · ${w.partitions.length} partition${w.partitions.length === 1 ? '' : 's'}`;
      return `<div class="worker ${w.state}" data-slot="${w.slot}"><span class="swatch" style="background:${color}"></span>
        <span class="what">worker ${w.slot} · pid ${w.pid ?? '–'}<small>${what}${w.restarts ? ` · restarted ${w.restarts}×` : ''}</small></span>
        <button data-kill="${w.slot}" ${w.state === 'running' ? '' : 'disabled'}>kill -9</button></div>`;
    })
    .join('');
}

function log(text, kind) {
  const li = document.createElement('li');
  if (kind) li.className = kind;
  const t = new Date();
  li.innerHTML = `<time>${t.toTimeString().slice(0, 8)}</time>`;
  li.appendChild(document.createTextNode(text));
  const ol = $('log');
  ol.insertBefore(li, ol.firstChild);
  while (ol.children.length > 80) ol.removeChild(ol.lastChild);
}

$('workers').addEventListener('click', async (e) => {
  const slot = e.target && e.target.dataset && e.target.dataset.kill;
  if (slot === undefined) return;
  e.target.disabled = true;
  for (let attempt = 0; attempt < 2; attempt++) {
    const headers = state.authKey ? { authorization: `Bearer ${state.authKey}` } : {};
    const res = await fetch(`/workers/${slot}/kill`, { method: 'POST', headers });
    if (res.status === 401 && attempt === 0) {
      state.authKey = prompt('This service has an API key. Enter it to kill a worker:') || '';
      sessionStorage.setItem('rm-api-key', state.authKey);
      continue;
    }
    if (!res.ok) log(`kill worker ${slot}: ${(await res.json()).message}`, 'bad');
    break;
  }
});

// ---- data

function applyOutput(o) {
  const e = o.event;
  if (o.type === 'driver') {
    const d = state.drivers.get(o.key) || {};
    Object.assign(d, { status: e.status, lat: e.lat, lng: e.lng, rideId: e.rideId });
    state.drivers.set(o.key, d);
    return;
  }
  if (o.type !== 'ride') return;
  const r = state.rides.get(o.key);
  switch (e.type) {
    case 'ride.requested':
      state.rides.set(o.key, { status: 'matching', pickup: e.pickup, dropoff: e.dropoff, driverId: null });
      break;
    case 'ride.offered':
      if (r) Object.assign(r, { status: 'offered', driverId: e.driverId });
      break;
    case 'ride.matching':
      if (r) Object.assign(r, { status: 'matching', driverId: null });
      break;
    case 'ride.matched': {
      if (r) Object.assign(r, { status: 'matched', driverId: e.driverId });
      const d = state.drivers.get(e.driverId);
      state.flashes.push({ kind: 'match', from: d && d.lat !== null ? { lat: d.lat, lng: d.lng } : null, to: e.pickup, at: performance.now() });
      state.matchesDrawn++;
      document.body.dataset.matches = String(state.matchesDrawn);
      $('latest').textContent = `latest match: ${e.driverId} → ride ${o.key.slice(0, 12)}… in ${fmtMs(e.matchMs)}${e.offers > 1 ? ` (offer ${e.offers})` : ''}`;
      break;
    }
    case 'ride.started':
      if (r) r.status = 'in_progress';
      break;
    case 'ride.completed':
    case 'ride.cancelled':
    case 'ride.expired': {
      const kind = e.type.slice(5);
      if (r) state.flashes.push({ kind, to: r.status === 'in_progress' ? r.dropoff : r.pickup, at: performance.now() });
      state.rides.delete(o.key);
      if (kind === 'expired') log(`ride ${o.key.slice(0, 10)}… expired: ${e.reason}`, 'bad');
      break;
    }
  }
}

// Lease moves come in bursts (a takeover, a hand-over): one log line per burst and worker.
let lastKillAt = null;
const handedOver = new Set();
const moves = new Map(); // slot -> { partitions, orphans }
let movesTimer = null;
let burstAt = 0;
function noteMove(slot, partition, wasOrphan) {
  if (moves.size === 0) burstAt = performance.now();
  const m = moves.get(slot) || { partitions: [], orphans: 0 };
  m.partitions.push(partition);
  if (wasOrphan) m.orphans++;
  moves.set(slot, m);
  clearTimeout(movesTimer);
  movesTimer = setTimeout(() => {
    for (const [to, { partitions, orphans }] of moves) {
      const list = partitions.sort((a, b) => a - b).join(', ');
      const how = orphans === 0 ? 'handed over to' : lastKillAt !== null ? `taken over, ${fmtMs(burstAt - lastKillAt)} after the kill, by` : 'taken by';
      log(`partition${partitions.length > 1 ? 's' : ''} ${list} ${how} worker ${to}: their actors are rebuilt from snapshot + journal`, orphans > 0 ? 'warn' : '');
    }
    moves.clear();
  }, 250);
}

function applyWorkerEvent(e) {
  const previous = new Map();
  for (const w of state.workers) for (const p of w.partitions) previous.set(p, w.slot);
  state.workers = e.workers;
  switch (e.type) {
    case 'worker.killed':
      lastKillAt = performance.now();
      log(`worker ${e.slot} (pid ${e.pid}) killed with SIGKILL — its partitions wait for their leases to expire`, 'bad');
      break;
    case 'worker.exited':
      if (e.restartInMs !== null) log(`worker ${e.slot} exited (${e.signal || `code ${e.code}`}); supervisor restarts it in ${e.restartInMs} ms`, 'warn');
      break;
    case 'worker.ready':
      log(`worker ${e.slot} up (pid ${e.pid})`, 'good');
      break;
    case 'lease.lost':
      handedOver.add(e.partition); // released by its worker: a graceful hand-over, not a takeover
      break;
    case 'lease.acquired': {
      const before = previous.get(e.partition);
      if (before !== e.slot) noteMove(e.slot, e.partition, before === undefined && !handedOver.has(e.partition));
      handedOver.delete(e.partition);
      break;
    }
    case 'worker.error':
      log(`worker ${e.slot}: ${e.message}`, 'warn');
      break;
  }
  showWorkers();
}

async function loadDashboard() {
  const res = await fetch('/dashboard');
  const d = await res.json();
  state.city = d.city;
  state.partitions = d.partitions;
  state.workers = d.workers;
  state.drivers = new Map(d.drivers.map((x) => [x.driverId, { ...x, ...(state.drivers.get(x.driverId) || {}), status: x.status, lat: x.lat, lng: x.lng }]));
  state.rides = new Map(d.rides.map((x) => [x.rideId, x]));
  layout();
  showStats(d.stats);
  showWorkers();
}

function connect() {
  const es = new EventSource('/events');
  es.addEventListener('hello', () => {
    document.body.dataset.connected = 'true';
    $('conn').textContent = 'live';
    // Reload the picture on every (re)connection: events missed meanwhile are in it.
    loadDashboard().catch((err) => log(`could not load /dashboard: ${err.message}`, 'bad'));
  });
  es.addEventListener('output', (m) => applyOutput(JSON.parse(m.data)));
  es.addEventListener('stats', (m) => showStats(JSON.parse(m.data)));
  es.addEventListener('worker', (m) => applyWorkerEvent(JSON.parse(m.data)));
  es.onerror = () => {
    document.body.dataset.connected = 'false';
    $('conn').textContent = 'reconnecting…';
  };
}

layout();
requestAnimationFrame(draw);
connect();
