// The operator's page (admins): create concerts and schedules, and watch one
// schedule's sale live. A client of the public API like any other: the
// monitor polls GET /api/admin/schedules/{id}/monitor and the compact seat
// statuses (If-None-Match) about once a second, one poll in flight at a time,
// and repaints only the seats whose status changed, on a canvas, so it stays
// smooth with 100,000 seats and while a benchmark runs against the server.

import * as api from './api.js';

const $ = (id) => document.getElementById(id);
const POLL_MS = 1000;
/** Samples the sparklines keep: a minute of polls. */
const HISTORY = 60;
/** Seat colours: free, held, sold (index = the 2-bit status). */
const COLOURS = ['#bbf7d0', '#f59e0b', '#1e3a8a'];
const STATUS_NAMES = ['free', 'held', 'sold'];

// ---------------------------------------------------------------- messages

function say(text, kind = 'info') {
  const status = $('status');
  status.textContent = text;
  status.className = text ? `status ${kind}` : 'status';
}

function sayError(error) {
  say(error instanceof api.ApiError ? error.message : String(error), 'error');
}

// ---------------------------------------------------------------- session

/** The role in the session's token (the server checks it again on every call). */
function role() {
  const token = api.session.token;
  if (!token) return null;
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload)).role || null;
  } catch {
    return null;
  }
}

function showView() {
  const loggedIn = Boolean(api.session.token);
  const admin = loggedIn && role() === 'ADMIN';
  $('who').textContent = loggedIn ? api.session.email || 'logged in' : '';
  $('log-out').hidden = !loggedIn;
  $('login').hidden = loggedIn;
  $('not-admin').hidden = !loggedIn || admin;
  $('admin').hidden = !admin;
  if (!admin) stopMonitor();
  return admin;
}

async function onLogIn(event) {
  event.preventDefault();
  const form = event.currentTarget;
  try {
    await api.logIn(form.email.value.trim(), form.password.value);
    form.password.value = '';
    say('');
    if (showView()) await start();
  } catch (error) {
    sayError(error);
  }
}

function onLogOut() {
  api.logOut();
  location.hash = '';
  showView();
  say('Logged out.');
  $('login-email').focus();
}

// ---------------------------------------------------------------- catalogue

let concerts = [];

function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString() : '—';
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

async function loadCatalogue() {
  const list = $('concert-list');
  try {
    concerts = await api.get('/api/concerts');
    const schedules = await Promise.all(
      concerts.map((c) => api.get(`/api/concerts/${c.id}/schedules`)),
    );
    list.replaceChildren();
    if (!concerts.length) list.append(el('p', { className: 'muted', textContent: 'No concert yet: create one below.' }));
    concerts.forEach((concert, i) => {
      const items = schedules[i].map((s) =>
        el(
          'li',
          {},
          el('span', {
            textContent: `${formatTime(s.startsAt)} · ${s.totalSeats} seats · sale ${s.salesOpenAt ? `opens ${formatTime(s.salesOpenAt)}` : 'open'} · ${s.maxSeatsPerBuyer} per buyer `,
          }),
          el('a', {
            className: 'button',
            href: `#/monitor/${concert.id}/${s.id}`,
            textContent: 'Monitor',
            ariaLabel: `Monitor schedule ${s.id} of ${concert.title}`,
          }),
        ),
      );
      list.append(
        el(
          'article',
          { className: 'concert' },
          el('h3', { textContent: `${concert.title} — ${concert.artist}` }),
          el('p', { className: 'muted', textContent: `${concert.venue} · concert ${concert.id}` }),
          items.length
            ? el('ul', { className: 'plain schedules' }, ...items)
            : el('p', { className: 'muted', textContent: 'No schedule yet.' }),
        ),
      );
    });
    const select = $('schedule-concert');
    const chosen = select.value;
    select.replaceChildren(
      ...concerts.map((c) => el('option', { value: String(c.id), textContent: `${c.title} (${c.id})` })),
    );
    if (chosen) select.value = chosen;
  } catch (error) {
    sayError(error);
  }
}

async function onCreateConcert(event) {
  event.preventDefault();
  const form = event.currentTarget;
  try {
    const concert = await api.post('/api/admin/concerts', {
      title: form.title.value.trim(),
      artist: form.artist.value.trim(),
      venue: form.venue.value.trim(),
    });
    form.reset();
    await loadCatalogue();
    $('schedule-concert').value = String(concert.id);
    say(`Concert "${concert.title}" created (id ${concert.id}).`);
  } catch (error) {
    sayError(error);
  }
}

let sectionCount = 0;

function addSection(name = '', rows = 10, perRow = 20, price = 5000) {
  const n = ++sectionCount;
  const field = (label, input) =>
    el('div', { className: 'field' }, el('label', { htmlFor: input.id, textContent: label }), input);
  const row = el(
    'div',
    { className: 'section-row' },
    field('Section', el('input', { id: `sec-name-${n}`, name: 'sectionName', value: name || String.fromCharCode(64 + n), required: true, maxLength: 20 })),
    field('Rows', el('input', { id: `sec-rows-${n}`, name: 'rows', type: 'number', min: 1, max: 200, value: rows, required: true })),
    field('Seats per row', el('input', { id: `sec-per-${n}`, name: 'seatsPerRow', type: 'number', min: 1, max: 200, value: perRow, required: true })),
    field('Price (cents)', el('input', { id: `sec-price-${n}`, name: 'price', type: 'number', min: 0, value: price, required: true })),
  );
  const remove = el('button', { type: 'button', className: 'secondary', textContent: 'Remove' });
  remove.setAttribute('aria-label', `Remove section ${n}`);
  remove.addEventListener('click', () => {
    if ($('section-rows').children.length > 1) row.remove();
    updateGridSize();
  });
  row.append(remove);
  $('section-rows').append(row);
  updateGridSize();
}

function sectionsOfForm() {
  return [...$('section-rows').children].map((row) => ({
    name: row.querySelector('[name=sectionName]').value.trim(),
    rows: Number(row.querySelector('[name=rows]').value),
    seatsPerRow: Number(row.querySelector('[name=seatsPerRow]').value),
    price: Number(row.querySelector('[name=price]').value),
  }));
}

function updateGridSize() {
  const seats = sectionsOfForm().reduce((sum, s) => sum + s.rows * s.seatsPerRow, 0);
  $('grid-size').textContent = `${seats.toLocaleString()} seats (at most 20,000).`;
}

async function onCreateSchedule(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const concertId = form.concert.value;
  if (!concertId) {
    say('Create a concert first.', 'error');
    return;
  }
  const body = {
    startsAt: new Date(form.startsAt.value).toISOString(),
    sections: sectionsOfForm(),
    maxSeatsPerBuyer: Number(form.maxSeatsPerBuyer.value),
  };
  if (form.salesOpenAt.value) body.salesOpenAt = new Date(form.salesOpenAt.value).toISOString();
  try {
    const schedule = await api.post(`/api/admin/concerts/${concertId}/schedules`, body);
    await loadCatalogue();
    say(`Schedule ${schedule.id} created with ${schedule.totalSeats} seats.`);
  } catch (error) {
    sayError(error);
  }
}

// ---------------------------------------------------------------- monitor

/** The schedule watched now, or null; `run` changes with every start, ending older loops. */
let watched = null;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function stopMonitor() {
  watched = null;
  $('monitor').hidden = true;
  $('catalogue').hidden = false;
}

/** Positions of the seats in grid cells, sections flowed left to right. */
function gridOf(layout) {
  const sections = new Map();
  layout.seats.forEach((seat, i) => {
    let section = sections.get(seat.section);
    if (!section) sections.set(seat.section, (section = { name: seat.section, rows: new Map(), cols: 0, seats: [] }));
    if (!section.rows.has(seat.row)) section.rows.set(seat.row, section.rows.size);
    section.cols = Math.max(section.cols, seat.number);
    section.seats.push(i);
  });
  return { count: layout.seats.length, sections: [...sections.values()], seats: layout.seats };
}

/** Cell size and each section's origin for a canvas `width` wide. */
function place(grid, width) {
  const maxHeight = Math.max(320, Math.min(1600, window.innerHeight * 1.5));
  const gap = 10;
  let best = null;
  for (let cell = 16; cell >= 1; cell--) {
    let x = 0, y = 0, lineHeight = 0, right = 0;
    const origins = [];
    for (const s of grid.sections) {
      const w = s.cols * cell, h = s.rows.size * cell;
      if (x > 0 && x + w > width) {
        x = 0;
        y += lineHeight + gap;
        lineHeight = 0;
      }
      origins.push([x, y]);
      x += w + gap;
      right = Math.max(right, x - gap);
      lineHeight = Math.max(lineHeight, h);
    }
    best = { cell, origins, width: Math.max(right, 1), height: Math.max(y + lineHeight, 1) };
    if (best.height <= maxHeight && best.width <= width) break;
  }
  return best;
}

function drawAll(view) {
  const { canvas, grid, statuses } = view;
  const box = $('grid-box');
  const geometry = place(grid, Math.max(box.clientWidth - 16, 100));
  const scale = window.devicePixelRatio || 1;
  canvas.width = Math.ceil(geometry.width * scale);
  canvas.height = Math.ceil(geometry.height * scale);
  canvas.style.width = `${geometry.width}px`;
  canvas.style.height = `${geometry.height}px`;
  const ctx = canvas.getContext('2d');
  ctx.setTransform(scale, 0, 0, scale, 0, 0);
  ctx.clearRect(0, 0, geometry.width, geometry.height);
  // Each seat's top-left corner, in CSS pixels.
  const xs = new Float32Array(grid.count), ys = new Float32Array(grid.count);
  grid.sections.forEach((s, k) => {
    const [ox, oy] = geometry.origins[k];
    for (const i of s.seats) {
      const seat = grid.seats[i];
      xs[i] = ox + (seat.number - 1) * geometry.cell;
      ys[i] = oy + s.rows.get(seat.row) * geometry.cell;
    }
  });
  Object.assign(view, { ctx, xs, ys, size: geometry.cell > 3 ? geometry.cell - 1 : geometry.cell });
  for (let i = 0; i < grid.count; i++) paintSeat(view, i, statuses ? statuses[i] : 0);
}

function paintSeat(view, i, status) {
  view.ctx.fillStyle = COLOURS[status] || COLOURS[0];
  view.ctx.fillRect(view.xs[i], view.ys[i], view.size, view.size);
}

/** The 2-bit statuses, one byte per seat. */
function unpack(encoded, count) {
  const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = (bytes[i >> 2] >> (2 * (i & 3))) & 3;
  return out;
}

/** Repaints only the seats whose status changed; returns how many did. */
function applyStatuses(view, next) {
  let changed = 0;
  const previous = view.statuses;
  for (let i = 0; i < next.length; i++) {
    if (!previous || previous[i] !== next[i]) {
      paintSeat(view, i, next[i]);
      changed++;
    }
  }
  view.statuses = next;
  return changed;
}

const TILES = [
  ['sold', 'Sold'],
  ['held', 'Held'],
  ['free', 'Free'],
  ['totalSeats', 'Seats'],
  ['holdsPerSec', 'Holds / s', true],
  ['waiting', 'Waiting', true],
  ['active', 'Active (passes + holds)', true],
  ['admissionRate', 'Admitted / s', true],
];

function buildTiles(view) {
  const stats = $('stats');
  stats.replaceChildren();
  view.tiles = {};
  for (const [key, label, spark] of TILES) {
    const value = el('dd', { textContent: '—' });
    const tile = el('dl', { className: 'tile' }, el('dt', { textContent: label }), value);
    let canvas = null;
    if (spark) {
      canvas = el('canvas', { className: 'spark', width: 120, height: 28 });
      canvas.setAttribute('aria-hidden', 'true');
      tile.append(canvas);
    }
    stats.append(tile);
    view.tiles[key] = { value, canvas, history: [] };
  }
}

function formatValue(key, v) {
  if (v === null || v === undefined) return 'off';
  if (key === 'holdsPerSec' || key === 'admissionRate') return v.toFixed(1);
  return v.toLocaleString();
}

function drawSpark(canvas, history) {
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const max = Math.max(1, ...history);
  ctx.strokeStyle = '#1d4ed8';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  history.forEach((v, i) => {
    const x = (i / (HISTORY - 1)) * (width - 2) + 1;
    const y = height - 2 - (v / max) * (height - 4);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function renderNumbers(view, m) {
  for (const [key] of TILES) {
    const tile = view.tiles[key];
    setText(tile.value, formatValue(key, m[key]));
    if (tile.canvas) {
      tile.history.push(Number(m[key]) || 0);
      if (tile.history.length > HISTORY) tile.history.shift();
      drawSpark(tile.canvas, tile.history);
    }
  }
  const total = Math.max(1, m.totalSeats);
  const bar = $('seat-bar').children;
  bar[0].style.width = `${(100 * m.sold) / total}%`;
  bar[1].style.width = `${(100 * m.held) / total}%`;
  bar[2].style.width = `${(100 * m.free) / total}%`;

  const twice = m.oversell.seatsSoldTwice;
  const mismatched = m.oversell.statusMismatches;
  const guard = $('guard');
  const ok = twice === 0 && mismatched === 0;
  guard.className = ok ? 'guard ok' : 'guard bad';
  setText(
    guard,
    `Oversell guard: ${twice} ${twice === 1 ? 'seat' : 'seats'} sold twice` +
      (mismatched ? `, ${mismatched} with a status that disagrees with their reservations` : '') +
      (ok ? ' ✓' : ' ✗ invariant broken'),
  );
  const opens = m.salesOpenAt ? ` · sale opens ${formatTime(m.salesOpenAt)}` : '';
  setText($('monitor-meta'), `State: ${m.state}${opens} · waiting room ${m.waitingRoom}`);
  $('seat-grid').setAttribute(
    'aria-label',
    `Seat grid of ${m.totalSeats} seats: ${m.sold} sold, ${m.held} held, ${m.free} free`,
  );
}

/** Round trips of the last minute of polls, for the page and for tools. */
const polls = { rtts: [], count: 0, failures: 0 };
window.operatorPolls = polls;

async function openMonitor(concertId, scheduleId) {
  const run = {};
  watched = run;
  $('catalogue').hidden = true;
  $('monitor').hidden = false;
  const title = $('monitor-title');
  const concert = concerts.find((c) => String(c.id) === String(concertId));
  title.textContent = `Monitor: schedule ${scheduleId}${concert ? ` of ${concert.title}` : ''}`;
  title.focus();
  const view = { canvas: $('seat-grid'), statuses: null, etag: null, lastRepaint: 0 };
  // For tools and tests: the grid, its seats' positions and statuses.
  window.operatorView = view;
  buildTiles(view);
  say('');
  try {
    const layout = await api.get(`/api/concerts/${concertId}/schedules/${scheduleId}/seats/layout`);
    if (watched !== run) return;
    view.grid = gridOf(layout);
    drawAll(view);
  } catch (error) {
    sayError(error);
    return;
  }
  const observer = new ResizeObserver(() => {
    if (watched === run) requestAnimationFrame(() => drawAll(view));
  });
  observer.observe($('grid-box'));
  const statusesPath = `/api/concerts/${concertId}/schedules/${scheduleId}/seats/statuses`;
  while (watched === run) {
    const started = performance.now();
    try {
      const [m, changed] = await Promise.all([
        api.get(`/api/admin/schedules/${scheduleId}/monitor`),
        api.getIfChanged(statusesPath, view.etag),
      ]);
      if (watched !== run) break;
      const rtt = performance.now() - started;
      polls.count++;
      polls.rtts.push(Math.round(rtt));
      if (polls.rtts.length > HISTORY) polls.rtts.shift();
      view.lastRepaint = 0;
      if (changed) {
        view.etag = changed.etag;
        view.lastRepaint = applyStatuses(view, unpack(changed.body.statuses, view.grid.count));
      }
      renderNumbers(view, m);
      const worst = Math.max(...polls.rtts);
      setText(
        $('poll-info'),
        `Updated ${new Date().toLocaleTimeString()} · round trip ${Math.round(rtt)} ms (slowest of the last minute: ${worst} ms)`,
      );
      if ($('status').classList.contains('error')) say('');
    } catch (error) {
      polls.failures++;
      sayError(error);
      if (error.status === 401 || error.status === 403) {
        showView();
        break;
      }
    }
    await sleep(Math.max(100, POLL_MS - (performance.now() - started)));
  }
  observer.disconnect();
}

// ---------------------------------------------------------------- routing

function route() {
  const match = /^#\/monitor\/(\d+)\/(\d+)$/.exec(location.hash);
  if (match) openMonitor(match[1], match[2]);
  else if (watched || !$('monitor').hidden) {
    stopMonitor();
    loadCatalogue();
  }
}

async function start() {
  await loadCatalogue();
  route();
}

function init() {
  $('login-form').addEventListener('submit', onLogIn);
  $('log-out').addEventListener('click', onLogOut);
  $('concert-form').addEventListener('submit', onCreateConcert);
  $('schedule-form').addEventListener('submit', onCreateSchedule);
  $('add-section').addEventListener('click', () => addSection());
  $('section-rows').addEventListener('input', updateGridSize);
  $('monitor-close').addEventListener('click', () => {
    location.hash = '';
  });
  window.addEventListener('hashchange', route);
  addSection('A', 20, 50, 5000);
  const starts = new Date(Date.now() + 30 * 24 * 3600 * 1000);
  starts.setMinutes(0, 0, 0);
  const local = new Date(starts.getTime() - starts.getTimezoneOffset() * 60000);
  $('schedule-starts').value = local.toISOString().slice(0, 16);
  if (showView()) start();
}

init();
