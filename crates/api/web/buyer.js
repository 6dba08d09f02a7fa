// The buyer's page: one page, hash routes, a view per route. Every view
// talks to the public API through api.js and cleans up its timers and
// streams when the route changes.

import {
  ApiError, session, get, post, del, getIfChanged, idempotencyKey,
  logIn, signUp, logOut, queueEvents,
} from './api.js';

const main = document.getElementById('main');
const statusLine = document.getElementById('status');
const announcer = document.getElementById('announce');
const nav = document.getElementById('nav');

/** How often the seat map asks whether a seat changed (304 when none did). */
const SEAT_POLL_MS = 1000;
/** The API takes 1 to 4 seats per hold, whatever the schedule allows. */
const MAX_SEATS_PER_HOLD = 4;

// ---------------------------------------------------------------- helpers

/** Builds an element: `h('button', { class: 'x', onclick }, 'text', child)`. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? '' : value);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** Replaces the page's content; focuses the new heading for screen readers and keyboards. */
function show(...children) {
  main.replaceChildren(...children);
  const heading = main.querySelector('h2');
  if (heading) {
    heading.tabIndex = -1;
    heading.focus();
  }
}

/** Says something in the live region: `kind` is `info` or `error`. */
function say(message, kind = 'info') {
  statusLine.textContent = message;
  statusLine.className = message ? `status ${kind}` : 'status';
}

/** Tells screen readers of a change that the page shows elsewhere. */
function announce(message) {
  announcer.textContent = message;
}

/** Shows an API error as the sentence it carries; rethrows anything else. */
function sayError(error) {
  if (!(error instanceof ApiError)) throw error;
  say(error.message, 'error');
  if (error.status === 401) renderNav();
}

const money = new Intl.NumberFormat('en', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
/** Prices are in the smallest currency unit. */
const price = (amount) => money.format(amount / 100);

const dateTime = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short' });
const when = (iso) => dateTime.format(new Date(iso));

/** `75` → `1:15`; `3725` → `1:02:05`. */
function clock(totalSecs) {
  const s = Math.max(0, Math.ceil(totalSecs));
  const [hours, minutes, seconds] = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60];
  const pad = (n) => String(n).padStart(2, '0');
  return hours ? `${hours}:${pad(minutes)}:${pad(seconds)}` : `${minutes}:${pad(seconds)}`;
}

const seatName = (seat) => `${seat.section}-${seat.row}-${seat.number}`;

// ------------------------------------------------------------ the routes

/** Undo functions of the current view (timers, streams), run on leaving it. */
let cleanups = [];
function onLeave(fn) {
  cleanups.push(fn);
}

/** Whether the view that started work is still the one shown. */
let viewId = 0;
function currentView() {
  const id = viewId;
  return () => id === viewId;
}

const routes = [
  [/^#\/login$/, viewLogin],
  [/^#\/concerts\/(\d+)$/, viewConcert],
  [/^#\/concerts\/(\d+)\/schedules\/(\d+)$/, viewWaitingRoom],
  [/^#\/concerts\/(\d+)\/schedules\/(\d+)\/seats$/, viewSeats],
  [/^#\/reservations\/(\d+)$/, viewReservation],
  [/^#\/my$/, viewMyReservations],
  [/^(#\/?)?$/, viewConcerts],
];

/** Views a visitor may see without logging in. */
const PUBLIC = new Set([viewLogin, viewConcerts, viewConcert]);

async function route() {
  cleanups.forEach((fn) => fn());
  cleanups = [];
  viewId += 1;
  const stillHere = currentView();
  say('');
  renderNav();
  const hash = location.hash;
  const match = routes.map(([re, view]) => [hash.match(re), view]).find(([m]) => m);
  if (!match) return show(h('h2', {}, 'Page not found'), h('p', {}, h('a', { href: '#/' }, 'See the concerts')));
  const [[, ...params], view] = match;
  if (!session.token && !PUBLIC.has(view)) {
    sessionStorage.setItem('booking.after-login', hash);
    location.hash = '#/login';
    return undefined;
  }
  try {
    return await view(...params.map(Number));
  } catch (error) {
    // A view left behind keeps its failure to itself.
    return stillHere() ? sayError(error) : undefined;
  }
}

function renderNav() {
  const links = [h('a', { href: '#/' }, 'Concerts')];
  if (session.token) {
    links.push(
      h('a', { href: '#/my' }, 'My reservations'),
      h('span', { class: 'who' }, session.email),
      h('button', { type: 'button', class: 'link', onclick: onLogOut }, 'Log out'),
    );
  } else {
    links.push(h('a', { href: '#/login' }, 'Log in'));
  }
  nav.replaceChildren(...links);
}

function onLogOut() {
  logOut();
  location.hash = '#/';
  route();
}

// ---------------------------------------------------------- log in / sign up

function viewLogin() {
  const field = (id, label, type, autocomplete, extra = {}) => [
    h('label', { for: id }, label),
    h('input', { id, name: id, type, autocomplete, required: true, ...extra }),
  ];
  const logInForm = h('form', { class: 'card', onsubmit: onLogIn, 'aria-labelledby': 'login-title' },
    h('h3', { id: 'login-title' }, 'Log in'),
    field('login-email', 'Email', 'email', 'username'),
    field('login-password', 'Password', 'password', 'current-password'),
    h('p', {}, h('button', { type: 'submit' }, 'Log in')));
  const signUpForm = h('form', { class: 'card', onsubmit: onSignUp, 'aria-labelledby': 'signup-title' },
    h('h3', { id: 'signup-title' }, 'New here? Sign up'),
    field('signup-email', 'Email', 'email', 'email'),
    field('signup-nickname', 'Nickname', 'text', 'nickname'),
    field('signup-password', 'Password (8 characters or more)', 'password', 'new-password', { minlength: 8 }),
    h('p', {}, h('button', { type: 'submit' }, 'Sign up')));
  show(h('h2', {}, 'Log in or sign up'), h('div', { class: 'columns' }, logInForm, signUpForm));
}

async function onLogIn(event) {
  event.preventDefault();
  const form = event.currentTarget;
  await submit(form, () => logIn(form.elements['login-email'].value, form.elements['login-password'].value));
}

async function onSignUp(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const { value: email } = form.elements['signup-email'];
  await submit(form, () => signUp(email, form.elements['signup-password'].value, form.elements['signup-nickname'].value));
}

/** Runs a log-in or sign-up, then goes where the buyer was heading. */
async function submit(form, action) {
  const buttons = form.querySelectorAll('button');
  buttons.forEach((b) => { b.disabled = true; });
  try {
    await action();
    const next = sessionStorage.getItem('booking.after-login') || '#/';
    sessionStorage.removeItem('booking.after-login');
    location.hash = next;
  } catch (error) {
    sayError(error);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// ------------------------------------------------------ concerts, schedules

async function viewConcerts() {
  const concerts = await get('/api/concerts');
  const items = concerts.map((c) => h('li', { class: 'card' },
    h('h3', {}, h('a', { href: `#/concerts/${c.id}` }, c.title)),
    h('p', {}, `${c.artist} · ${c.venue}`),
    c.description && h('p', { class: 'muted' }, c.description)));
  show(h('h2', {}, 'Concerts'), items.length ? h('ul', { class: 'plain' }, items) : h('p', {}, 'No concert on sale yet.'));
}

async function viewConcert(concertId) {
  const [concert, schedules] = await Promise.all([
    get(`/api/concerts/${concertId}`),
    get(`/api/concerts/${concertId}/schedules`),
  ]);
  const rows = schedules.map((s) => h('li', { class: 'card' },
    h('h3', {}, when(s.startsAt)),
    h('p', {}, `${s.availableSeats} of ${s.totalSeats} seats free · up to ${s.maxSeatsPerBuyer} per buyer`),
    s.salesOpenAt && new Date(s.salesOpenAt) > new Date() && h('p', {}, `Sale opens ${when(s.salesOpenAt)}`),
    h('a', { class: 'button', href: `#/concerts/${concertId}/schedules/${s.id}` }, 'Get tickets')));
  show(
    h('h2', {}, concert.title),
    h('p', {}, `${concert.artist} · ${concert.venue}`),
    concert.description && h('p', { class: 'muted' }, concert.description),
    h('h3', {}, 'Dates'),
    rows.length ? h('ul', { class: 'plain' }, rows) : h('p', {}, 'No date yet.'),
  );
}

// ------------------------------------------------------------ waiting room

/** The entry pass of a schedule, kept for the tab's life. */
const passes = {
  key: (scheduleId) => `booking.pass.${scheduleId}`,
  get(scheduleId) {
    const pass = JSON.parse(sessionStorage.getItem(this.key(scheduleId)) || 'null');
    return pass && new Date(pass.expiresAt) > new Date() ? pass.token : null;
  },
  save(scheduleId, token, expiresAt) {
    sessionStorage.setItem(this.key(scheduleId), JSON.stringify({ token, expiresAt }));
  },
  drop(scheduleId) {
    sessionStorage.removeItem(this.key(scheduleId));
  },
};

async function viewWaitingRoom(concertId, scheduleId) {
  const stillHere = currentView();
  const seatsUrl = `#/concerts/${concertId}/schedules/${scheduleId}/seats`;
  const room = h('section', { class: 'card room' }, h('p', {}, 'Entering the waiting room…'));
  const title = h('p', { class: 'muted' });
  show(h('h2', {}, 'Waiting room'), title, room,
    h('p', { class: 'keep-open' }, 'Keep this page open: it takes you to the seats when your turn comes.'));
  catalogue.title(scheduleId).then((text) => { title.textContent = text; }, () => {});
  let status;
  try {
    status = await post('/api/queue/enter', { scheduleId });
  } catch (error) {
    if (error.slug === 'sold-out') return renderSoldOut(room);
    if (error.status === 404 && await waitingRoomIsOff()) {
      location.replace(seatsUrl);
      return undefined;
    }
    throw error;
  }
  if (!stillHere()) return undefined;
  if (status.admitted) return takePass(scheduleId, seatsUrl, room);
  renderRoom(room, status);
  return followRoom(scheduleId, seatsUrl, room, stillHere);
}

/** The server says so on /health/ready: then holds need no pass. */
async function waitingRoomIsOff() {
  const health = await fetch('/health/ready').then((r) => r.json()).catch(() => ({}));
  return health.waitingRoom === 'disabled';
}

/** Already admitted: fetch the pass (or learn it went into a live hold). */
async function takePass(scheduleId, seatsUrl, room) {
  try {
    const pass = await get(`/api/queue/token?scheduleId=${scheduleId}`);
    passes.save(scheduleId, pass.token, pass.expiresAt);
    location.replace(seatsUrl);
  } catch (error) {
    if (error.slug !== 'token-used') throw error;
    room.replaceChildren(
      h('p', {}, 'You already hold seats of this date: pay for them or cancel them first.'),
      h('p', {}, h('a', { href: '#/my' }, 'My reservations')),
    );
  }
}

/** Follows the live stream: position updates until admitted, sold out or gone. */
async function followRoom(scheduleId, seatsUrl, room, stillHere) {
  let latest = null;
  // Set by the events after which the stream ends for good.
  let over = false;
  const countdown = setInterval(() => latest && tickCountdown(room, latest), 1000);
  onLeave(() => clearInterval(countdown));
  const handlers = {
    position: (status) => {
      if (status.state !== latest?.state || status.position !== latest?.position) announce(roomSummary(status));
      latest = { ...status, receivedAt: Date.now() };
      renderRoom(room, status);
    },
    admitted: (pass) => {
      passes.save(scheduleId, pass.token, pass.expiresAt);
      location.replace(seatsUrl);
    },
    'sold-out': () => {
      over = true;
      renderSoldOut(room);
    },
    left: () => {
      over = true;
      room.replaceChildren(
        h('p', {}, 'Your turn came and went: the pass expired unused.'),
        h('p', {}, h('button', { type: 'button', onclick: route }, 'Enter again')),
      );
    },
  };
  // A broken stream: enter again (one keeps one's place) and follow a new one.
  const reconnect = () => setTimeout(() => !over && stillHere() && route(), 2000);
  const close = await queueEvents(scheduleId, handlers, reconnect);
  if (stillHere()) onLeave(close);
  else close();
}

function renderRoom(room, status) {
  const facts = [];
  if (status.state === 'before-opening') {
    facts.push(
      h('p', { class: 'big' }, 'The sale opens in ', h('strong', { class: 'opens-in' }, clock(status.opensInSecs ?? 0))),
      h('p', {}, 'Everyone who enters before the opening gets a place in line by a fair random draw at the opening.'),
    );
  } else {
    facts.push(h('p', { class: 'big' }, 'Your place in line: ', h('strong', { class: 'position' }, String(status.position ?? '…'))));
    if (status.state === 'paused') {
      facts.push(h('p', {}, 'Every seat is held right now. Holds that expire or are cancelled come back on sale, so stay in line.'));
    }
  }
  facts.push(h('dl', { class: 'facts' },
    h('dt', {}, 'Waiting'), h('dd', {}, String(status.waiting)),
    h('dt', {}, 'Estimated wait'), h('dd', {}, status.estimatedWaitSecs == null ? 'not known yet' : clock(status.estimatedWaitSecs)),
    h('dt', {}, 'Seats left'), h('dd', { class: 'seats-left' }, String(status.seatsLeft))));
  room.replaceChildren(...facts);
  room.dataset.state = status.state;
}

/** The room in one sentence, for screen readers (the countdown ticks silently). */
function roomSummary(status) {
  if (status.state === 'before-opening') return `The sale opens in ${clock(status.opensInSecs ?? 0)}.`;
  const paused = status.state === 'paused' ? ' Every seat is held right now.' : '';
  return `Your place in line: ${status.position}. ${status.seatsLeft} seats left.${paused}`;
}

/** Counts the opening down between two stream updates. */
function tickCountdown(room, latest) {
  if (latest.state !== 'before-opening' || latest.opensInSecs == null) return;
  const left = latest.opensInSecs - (Date.now() - latest.receivedAt) / 1000;
  const el = room.querySelector('.opens-in');
  if (el) el.textContent = clock(left);
}

function renderSoldOut(room) {
  announce('Sold out: every seat of this date has been sold.');
  room.dataset.state = 'sold-out';
  // Nothing is left to wait for.
  room.parentElement?.querySelector('.keep-open')?.remove();
  room.replaceChildren(
    h('p', { class: 'big' }, h('strong', {}, 'Sold out')),
    h('p', {}, 'Every seat of this date has been sold. Thank you for waiting.'),
    h('p', {}, h('a', { href: '#/' }, 'See other concerts')),
  );
}

// ---------------------------------------------------------------- seat map

/** The 2-bit statuses of the compact answer, in layout order. */
const STATUS = ['AVAILABLE', 'HELD', 'RESERVED'];
function decodeStatuses(base64, count) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return Array.from({ length: count }, (_, i) => STATUS[(bytes[i >> 2] >> (2 * (i & 3))) & 3]);
}

async function viewSeats(concertId, scheduleId) {
  const stillHere = currentView();
  const base = `/api/concerts/${concertId}/schedules/${scheduleId}`;
  const [layout, concert, schedules, mine] = await Promise.all([
    get(`${base}/seats/layout`),
    get(`/api/concerts/${concertId}`),
    get(`/api/concerts/${concertId}/schedules`),
    get('/api/reservations/my'),
  ]);
  const schedule = schedules.find((s) => s.id === scheduleId);
  if (!schedule) throw new ApiError(404, { detail: 'This date does not exist.' });
  if (!await havePassOrNeedNone(scheduleId)) {
    location.replace(`#/concerts/${concertId}/schedules/${scheduleId}`);
    return;
  }
  const owned = mine
    .filter((r) => r.scheduleId === scheduleId && (r.status === 'PENDING' || r.status === 'CONFIRMED'))
    .reduce((n, r) => n + r.seatIds.length, 0);
  const map = {
    concertId,
    scheduleId,
    seats: layout.seats,
    statuses: layout.seats.map(() => 'AVAILABLE'),
    picked: new Set(),
    limit: Math.max(0, Math.min(MAX_SEATS_PER_HOLD, schedule.maxSeatsPerBuyer - owned)),
    etag: null,
  };
  const summary = h('p', { class: 'summary', 'aria-live': 'polite' });
  const holdButton = h('button', { type: 'button', class: 'hold', onclick: () => hold(map, holdButton) }, 'Hold the picked seats');
  const grid = h('div', { class: 'seatmap', role: 'group', 'aria-label': 'Seat map' });
  map.render = () => renderSeats(map, grid, summary, holdButton);
  show(
    h('h2', {}, 'Pick your seats'),
    h('p', {}, `${concert.title} · ${when(schedule.startsAt)} · pick up to ${map.limit} seat${map.limit === 1 ? '' : 's'}`),
    legend(),
    h('div', { class: 'seatmap-box', tabindex: '0', 'aria-label': 'Seat map, scrolls sideways' }, grid),
    summary,
    h('p', {}, holdButton),
  );
  await refreshStatuses(map, base);
  if (!stillHere()) return;
  const timer = setInterval(() => stillHere() && refreshStatuses(map, base).catch(sayError), SEAT_POLL_MS);
  onLeave(() => clearInterval(timer));
}

function legend() {
  const item = (cls, text) => h('li', {}, h('span', { class: `swatch seat ${cls}`, 'aria-hidden': 'true' }), text);
  return h('ul', { class: 'legend', 'aria-label': 'Legend' },
    item('available', 'Free'), item('picked', 'Picked'), item('held', 'Held by someone'), item('sold', 'Sold'));
}

/**
 * Whether the buyer may stay on the seat map: with a pass (kept, or fetched
 * now if admitted), with the waiting room off, or with a live hold that used
 * the pass (to watch the map). Anyone else belongs in the waiting room.
 */
async function havePassOrNeedNone(scheduleId) {
  if (passes.get(scheduleId)) return true;
  try {
    const pass = await get(`/api/queue/token?scheduleId=${scheduleId}`);
    passes.save(scheduleId, pass.token, pass.expiresAt);
    return true;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.slug === 'token-used') return true;
    return error.status === 404 && waitingRoomIsOff();
  }
}

/** Polls the compact statuses with the last ETag: a 304 costs nothing. */
async function refreshStatuses(map, base) {
  const changed = await getIfChanged(`${base}/seats/statuses`, map.etag);
  if (!changed) return;
  map.etag = changed.etag;
  map.statuses = decodeStatuses(changed.body.statuses, changed.body.totalSeats);
  map.seats.forEach((seat, i) => {
    if (map.statuses[i] !== 'AVAILABLE') map.picked.delete(seat.id);
  });
  map.render();
}

/** Sections, then rows, then seat buttons; rebuilt whole (a few hundred buttons at most). */
function renderSeats(map, grid, summary, holdButton) {
  const focusedSeat = document.activeElement?.dataset?.seat;
  const sections = new Map();
  map.seats.forEach((seat, i) => {
    const rows = sections.get(seat.section) ?? new Map();
    sections.set(seat.section, rows);
    const row = rows.get(seat.row) ?? [];
    rows.set(seat.row, row);
    row.push(seatButton(map, seat, map.statuses[i]));
  });
  grid.replaceChildren(...[...sections].map(([name, rows]) => h('section', { class: 'section', 'aria-label': `Section ${name}` },
    h('h3', {}, `Section ${name} · ${price(sectionPrice(map, name))}`),
    [...rows].map(([row, buttons]) => h('div', { class: 'row' }, h('span', { class: 'row-label', 'aria-hidden': 'true' }, `Row ${row}`), buttons)))));
  if (focusedSeat) grid.querySelector(`[data-seat="${focusedSeat}"]`)?.focus();
  const picked = map.seats.filter((s) => map.picked.has(s.id));
  const total = picked.reduce((sum, s) => sum + s.price, 0);
  summary.textContent = picked.length
    ? `Picked ${picked.length} of ${map.limit}: ${picked.map(seatName).join(', ')} · total ${price(total)}`
    : `No seat picked yet (up to ${map.limit}).`;
  holdButton.disabled = picked.length === 0;
}

/** A section's price (a section's seats share one; the lowest, were they not to). */
function sectionPrice(map, section) {
  return Math.min(...map.seats.filter((s) => s.section === section).map((s) => s.price));
}

/** How a taken seat looks (and is named): held by someone, or sold. */
const SEAT_CLASS = { HELD: 'held', RESERVED: 'sold' };

function seatButton(map, seat, status) {
  const taken = status !== 'AVAILABLE';
  const picked = map.picked.has(seat.id);
  const state = SEAT_CLASS[status] ?? (picked ? 'picked' : 'available');
  return h('button', {
    type: 'button',
    class: `seat ${state}`,
    dataset: { seat: seat.id, status },
    disabled: taken,
    'aria-pressed': String(picked),
    'aria-label': `Section ${seat.section}, row ${seat.row}, seat ${seat.number}, ${price(seat.price)}${taken ? `, ${state}` : ''}`,
    onclick: () => togglePick(map, seat),
  }, String(seat.number));
}

function togglePick(map, seat) {
  if (map.picked.has(seat.id)) {
    map.picked.delete(seat.id);
  } else if (map.picked.size >= map.limit) {
    say(map.limit === 0
      ? 'You already have as many seats of this date as one buyer may.'
      : `You can pick up to ${map.limit} seat${map.limit === 1 ? '' : 's'}.`, 'error');
    return;
  } else {
    map.picked.add(seat.id);
  }
  say('');
  map.render();
}

/** One click, one Idempotency-Key: a retry of this click cannot hold twice. */
async function hold(map, button) {
  const seatIds = [...map.picked].sort((a, b) => a - b);
  const headers = { 'Idempotency-Key': idempotencyKey() };
  const pass = passes.get(map.scheduleId);
  if (pass) headers['X-Queue-Token'] = pass;
  button.disabled = true;
  say('Holding your seats…');
  try {
    const reservation = await post('/api/reservations', { scheduleId: map.scheduleId, seatIds }, { headers });
    passes.drop(map.scheduleId);
    location.hash = `#/reservations/${reservation.id}`;
  } catch (error) {
    holdFailed(map, error);
  } finally {
    button.disabled = map.picked.size === 0;
  }
}

function holdFailed(map, error) {
  if (!(error instanceof ApiError)) throw error;
  const taken = new Set(error.problem.seatIds ?? []);
  if (taken.size) {
    map.seats.forEach((seat, i) => {
      if (taken.has(seat.id)) map.statuses[i] = 'HELD';
    });
    taken.forEach((id) => map.picked.delete(id));
    map.render();
  }
  sayError(error);
  if (error.status === 403 && !main.querySelector('.back-to-room')) {
    passes.drop(map.scheduleId);
    main.append(h('p', { class: 'back-to-room' }, h('a', { href: `#/concerts/${map.concertId}/schedules/${map.scheduleId}` }, 'Back to the waiting room')));
  }
}

// ------------------------------------------------------------ reservations

/** Each schedule with its concert, and its layout, for naming what a reservation holds. */
const catalogue = {
  schedules: new Map(),
  layouts: new Map(),
  /** `{ concert, schedule }` of a schedule id, or undefined for one not found. */
  async find(scheduleId) {
    if (!this.schedules.has(scheduleId)) {
      const concerts = await get('/api/concerts');
      const lists = await Promise.all(concerts.map((c) => get(`/api/concerts/${c.id}/schedules`)));
      lists.forEach((list, i) => list.forEach((schedule) => this.schedules.set(schedule.id, { concert: concerts[i], schedule })));
    }
    return this.schedules.get(scheduleId);
  },
  /** `id → seat` of a schedule, or an empty map when it cannot be found. */
  async seats(scheduleId) {
    if (!this.layouts.has(scheduleId)) {
      const found = await this.find(scheduleId);
      const layout = found ? await get(`/api/concerts/${found.concert.id}/schedules/${scheduleId}/seats/layout`) : { seats: [] };
      this.layouts.set(scheduleId, new Map(layout.seats.map((s) => [s.id, s])));
    }
    return this.layouts.get(scheduleId);
  },
  /** "Demo Night · Dec 30, 2026, 8:00 PM". */
  async title(scheduleId) {
    const found = await this.find(scheduleId);
    return found ? `${found.concert.title} · ${when(found.schedule.startsAt)}` : `Schedule ${scheduleId}`;
  },
};

async function seatList(reservation) {
  const seats = await catalogue.seats(reservation.scheduleId);
  return reservation.seatIds.map((id) => (seats.has(id) ? seatName(seats.get(id)) : `#${id}`)).join(', ');
}

const STATUS_TEXT = {
  PENDING: 'Held, waiting for payment',
  CONFIRMED: 'Paid',
  CANCELLED: 'Cancelled',
  EXPIRED: 'Hold expired: the seats went back on sale',
};

async function viewReservation(id) {
  const stillHere = currentView();
  const reservation = await get(`/api/reservations/${id}`);
  const [seats, title] = await Promise.all([seatList(reservation), catalogue.title(reservation.scheduleId)]);
  if (!stillHere()) return;
  const box = h('section', { class: 'card reservation', dataset: { status: reservation.status } });
  show(h('h2', {}, `Reservation ${reservation.id}`), h('p', {}, title), box);
  renderReservation(box, reservation, seats, stillHere);
}

function renderReservation(box, reservation, seats, stillHere) {
  box.stopCountdown?.();
  box.dataset.status = reservation.status;
  const facts = h('dl', { class: 'facts' },
    h('dt', {}, 'Status'), h('dd', { class: 'res-status' }, STATUS_TEXT[reservation.status] ?? reservation.status),
    h('dt', {}, 'Seats'), h('dd', {}, seats),
    h('dt', {}, 'Total'), h('dd', {}, price(reservation.totalAmount)));
  box.replaceChildren(facts);
  if (reservation.status !== 'PENDING') {
    box.append(h('p', {}, h('a', { href: '#/my' }, 'My reservations')));
    return;
  }
  const countdown = h('p', { class: 'countdown', role: 'timer', 'aria-live': 'off' });
  const pay = h('button', { type: 'button', class: 'pay' }, `Pay ${price(reservation.totalAmount)}`);
  const cancel = h('button', { type: 'button', class: 'secondary cancel' }, 'Cancel the hold');
  const refresh = async () => {
    const fresh = await get(`/api/reservations/${reservation.id}`);
    if (stillHere()) renderReservation(box, fresh, seats, stillHere);
  };
  pay.addEventListener('click', () => act([pay, cancel], refresh, () => post('/api/payments', { reservationId: reservation.id }, { headers: { 'Idempotency-Key': idempotencyKey() } }), 'Paid. Enjoy the concert!'));
  cancel.addEventListener('click', () => act([pay, cancel], refresh, () => del(`/api/reservations/${reservation.id}`), 'The hold is cancelled and its seats are free again.'));
  box.append(countdown, h('p', { class: 'actions' }, pay, ' ', cancel));
  box.stopCountdown = startHoldCountdown(reservation, countdown, [pay, cancel], refresh);
}

/**
 * Counts down to the hold's expiry; at zero says so and re-reads the
 * reservation. Returns the function that stops it.
 */
function startHoldCountdown(reservation, countdown, buttons, refresh) {
  const expiresAt = new Date(reservation.expiresAt).getTime();
  const tick = () => {
    const left = (expiresAt - Date.now()) / 1000;
    if (left > 0) {
      countdown.textContent = `Pay within ${clock(left)} or the seats go back on sale.`;
      return;
    }
    clearInterval(timer);
    countdown.textContent = 'Hold expired: the seats go back on sale.';
    countdown.classList.add('expired');
    buttons.forEach((b) => { b.disabled = true; });
    say('Your hold expired before it was paid.', 'error');
    setTimeout(() => refresh().catch(sayError), 1500);
  };
  const timer = setInterval(tick, 250);
  const stop = () => clearInterval(timer);
  onLeave(stop);
  tick();
  return stop;
}

/** Pays or cancels: buttons off while it runs, then the reservation as it is now. */
async function act(buttons, refresh, call, done) {
  buttons.forEach((b) => { b.disabled = true; });
  try {
    await call();
    say(done);
  } catch (error) {
    sayError(error);
  }
  await refresh().catch(sayError);
}

async function viewMyReservations() {
  const stillHere = currentView();
  const reservations = await get('/api/reservations/my');
  const rows = await Promise.all(reservations.map(async (r) => h('li', { class: 'card', dataset: { status: r.status } },
    h('h3', {}, h('a', { href: `#/reservations/${r.id}` }, `Reservation ${r.id}`)),
    h('p', {}, await catalogue.title(r.scheduleId)),
    h('p', {}, `${STATUS_TEXT[r.status] ?? r.status} · ${await seatList(r)} · ${price(r.totalAmount)}`),
    r.status === 'PENDING' && h('p', {},
      h('a', { class: 'button', href: `#/reservations/${r.id}` }, 'Pay'), ' ',
      h('button', { type: 'button', class: 'secondary', onclick: () => cancelFromList(r.id) }, `Cancel reservation ${r.id}`)))));
  if (!stillHere()) return;
  show(h('h2', {}, 'My reservations'), rows.length ? h('ul', { class: 'plain' }, rows) : h('p', {}, 'No reservation yet.'));
}

async function cancelFromList(id) {
  try {
    await del(`/api/reservations/${id}`);
    await route();
    say(`Reservation ${id} is cancelled.`);
  } catch (error) {
    sayError(error);
  }
}

window.addEventListener('hashchange', route);
route();
