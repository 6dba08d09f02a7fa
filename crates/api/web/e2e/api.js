// The API from the tests' side (Node's fetch): users, the admin's catalogue,
// and the steps other buyers take while the browser watches.

import { BASE_URL } from './browser.js';

let counter = 0;
/** A name no other test (or run) has used. */
export function unique(prefix) {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

export async function call(method, path, { token, body, headers = {}, base = BASE_URL } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(base + path, init);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** `call`, failing the test unless the answer has `status`. */
export async function expect(status, method, path, options) {
  const answer = await call(method, path, options);
  if (answer.status !== status) {
    throw new Error(`${method} ${path}: expected ${status}, got ${answer.status} ${JSON.stringify(answer.body)}`);
  }
  return answer.body;
}

/** A new user, logged in: `{ email, password, token }`. */
export async function newUser(prefix = 'buyer', base = BASE_URL) {
  const email = `${unique(prefix)}@example.com`;
  const password = 'password-123';
  await expect(201, 'POST', '/api/auth/signup', { base, body: { email, password, nickname: prefix } });
  const { token } = await expect(200, 'POST', '/api/auth/login', { base, body: { email, password } });
  return { email, password, token };
}

export async function adminToken(base = BASE_URL) {
  const body = { email: process.env.ADMIN_EMAIL, password: process.env.ADMIN_PASSWORD };
  return (await expect(200, 'POST', '/api/auth/login', { base, body })).token;
}

/**
 * A concert with one schedule of `sections` (`[{name, rows, seatsPerRow, price}]`),
 * created through the admin API. Returns `{ concert, schedule, seats }` with the
 * seat layout.
 */
export async function newSchedule({ sections, salesOpenAt = null, maxSeatsPerBuyer = 4, base = BASE_URL }) {
  const token = await adminToken(base);
  const concert = await expect(201, 'POST', '/api/admin/concerts', {
    base,
    token,
    body: { title: unique('Night'), artist: 'The Test Band', venue: 'Browser Hall', description: 'Made by a browser test.' },
  });
  const schedule = await expect(201, 'POST', `/api/admin/concerts/${concert.id}/schedules`, {
    base,
    token,
    body: { startsAt: '2030-06-01T20:00:00Z', sections, salesOpenAt, maxSeatsPerBuyer },
  });
  const layout = await expect(200, 'GET', `/api/concerts/${concert.id}/schedules/${schedule.id}/seats/layout`, { base });
  return { concert, schedule, seats: layout.seats };
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** Enters the waiting room and waits for the pass: the entry token. */
export async function admitted(user, scheduleId, base = BASE_URL) {
  await expect(200, 'POST', '/api/queue/enter', { base, token: user.token, body: { scheduleId } });
  for (let i = 0; i < 100; i += 1) {
    const answer = await call('GET', `/api/queue/token?scheduleId=${scheduleId}`, { base, token: user.token });
    if (answer.status === 200) return answer.body.token;
    await sleep(100);
  }
  throw new Error(`user ${user.email} was not admitted to schedule ${scheduleId}`);
}

/** Another buyer holds `seatIds` through the API (entering the room first). */
export async function holdSeats(user, scheduleId, seatIds, base = BASE_URL) {
  const pass = await admitted(user, scheduleId, base);
  return expect(201, 'POST', '/api/reservations', {
    base, token: user.token, headers: { 'X-Queue-Token': pass }, body: { scheduleId, seatIds },
  });
}

export async function pay(user, reservationId, base = BASE_URL) {
  return expect(201, 'POST', '/api/payments', { base, token: user.token, body: { reservationId } });
}

/** The statuses of a schedule's seats by id, from the full map. */
export async function seatStatuses(concertId, scheduleId, base = BASE_URL) {
  const map = await expect(200, 'GET', `/api/concerts/${concertId}/schedules/${scheduleId}/seats`, { base });
  return new Map(map.seats.map((s) => [s.id, s.status]));
}

/** Logs the browser's page in as `user` (through the page's own form). */
export async function logInPage(page, user, base = BASE_URL) {
  await page.goto(`${base}/#/login`);
  await page.getByLabel('Email', { exact: true }).first().fill(user.email);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Concerts' }).waitFor();
}
