// Shared helpers of the booking scenarios (k6). The data file (env DATA,
// written by loadtest/bench/prep.py before the timed part) holds the base
// URLs of the two instances, the schedule, its seat ids and one pre-minted
// JWT per user, so no argon2 log-in happens while k6 measures.
import http from 'k6/http';
import { Counter, Trend } from 'k6/metrics';
import { SharedArray } from 'k6/data';
import encoding from 'k6/encoding';

// The tokens are in their own file (env TOKENS), parsed once into a
// SharedArray: every VU parses DATA, so it stays small.
const DATA_FILE = __ENV.DATA || 'target/bench/data.json';
const TOKENS_FILE = __ENV.TOKENS || DATA_FILE;
const raw = JSON.parse(open(DATA_FILE));
export const data = {
  urls: raw.urls,
  concertId: raw.concertId,
  scheduleId: raw.scheduleId,
  seatIds: raw.seatIds,
  // A load balancer in front of the urls (chaos.py's nginx), when there is one.
  lb: raw.lb,
};
export const tokens = new SharedArray('tokens', () => {
  const t = JSON.parse(open(TOKENS_FILE));
  return Array.isArray(t) ? t : t.tokens;
});

// 409 (seat taken, sold out, contention) is an expected answer, not a failure.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 399 }, 409));

export const holdsOk = new Counter('holds_ok');
export const holdsConflict = new Counter('holds_conflict');
export const holdsOther = new Counter('holds_other');
export const seatsHeld = new Counter('seats_held');
export const serverErrors = new Counter('server_errors');
export const paymentsOk = new Counter('payments_ok');
export const seatMapsNotModified = new Counter('seat_maps_not_modified');
export const holdDuration = new Trend('hold_duration', true);

// Requests alternate between the two instances (no load balancer needed).
// STICKY=1: each VU keeps to one instance and the VUs alternate, as behind a
// sticky balancer. Scenario H-on needs it: 10,000 waiting users with a live
// connection to each instance would need more open files than the 20,000 a
// process may have here.
const STICKY = __ENV.STICKY === '1';
let rr = __VU;
export function base() {
  if (STICKY) return data.urls[__VU % data.urls.length];
  rr += 1;
  return data.urls[rr % data.urls.length];
}

export function auth(token, extra) {
  return Object.assign({ Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, extra || {});
}

// HISTORY=1: every hold and payment, with its answer, is one console line
// of JSON (start, end, user, op, seats, reservation, status; status 0: no
// answer) for the history checker (loadtest/history); bench.py sends the
// console to a file with --console-output.
const HISTORY = __ENV.HISTORY === '1';
const users = {};

// The user a JWT names (its subject); the server checked the signature.
function userOf(token) {
  if (!(token in users)) {
    try {
      users[token] = Number(JSON.parse(encoding.b64decode(token.split('.')[1], 'rawurl', 's')).sub);
    } catch (e) {
      users[token] = null;
    }
  }
  return users[token];
}

function record(op, token, seats, reservation, res, start) {
  console.log(JSON.stringify({
    start: new Date(start).toISOString(),
    end: new Date(Date.now() + 1).toISOString(), // ms precision: round the answer up
    user: userOf(token),
    op,
    seats,
    reservation,
    status: res.status,
  }));
}

function reservationOf(res) {
  if (res.status !== 201 && res.status !== 200) return null;
  try {
    return JSON.parse(res.body).id;
  } catch (e) {
    return null;
  }
}

function count5xx(res) {
  if (res.status >= 500 || res.status === 0) serverErrors.add(1, { status: String(res.status) });
}

// POST /api/reservations; returns the response (body kept only when asked).
export function hold(token, seatIds, opts) {
  const o = opts || {};
  const headers = o.queueToken ? auth(token, { 'X-Queue-Token': o.queueToken }) : auth(token);
  const params = { headers, tags: { name: 'hold' } };
  if (o.keepBody || HISTORY) params.responseType = 'text';
  const start = Date.now();
  const res = http.post(`${base()}/api/reservations`,
    JSON.stringify({ scheduleId: data.scheduleId, seatIds }), params);
  if (HISTORY) record('hold', token, seatIds, reservationOf(res), res, start);
  holdDuration.add(res.timings.duration);
  count5xx(res);
  if (res.status === 201) {
    holdsOk.add(1);
    seatsHeld.add(seatIds.length);
  } else if (res.status === 409) {
    holdsConflict.add(1);
  } else {
    holdsOther.add(1, { status: String(res.status) });
  }
  return res;
}

// GET the seat map. With `etag` (the ETag of the copy the caller has) it
// asks `If-None-Match`, as a browser revalidating its copy would; 304 (not
// modified, no body) is a success like 200.
export function seatMap(token, keepBody, etag) {
  const headers = etag ? auth(token, { 'If-None-Match': etag }) : auth(token);
  const params = { headers, tags: { name: 'seatmap' } };
  if (keepBody) params.responseType = 'text';
  const res = http.get(`${base()}/api/concerts/${data.concertId}/schedules/${data.scheduleId}/seats`, params);
  count5xx(res);
  if (res.status === 304) seatMapsNotModified.add(1);
  return res;
}

export function pay(token, reservationId) {
  const start = Date.now();
  const res = http.post(`${base()}/api/payments`, JSON.stringify({ reservationId }),
    { headers: auth(token), tags: { name: 'pay' } });
  if (HISTORY) record('pay', token, [], reservationId, res, start);
  count5xx(res);
  if (res.status === 201 || res.status === 200) paymentsOk.add(1);
  return res;
}

export function get(path, token, name, keepBody) {
  const params = { headers: auth(token), tags: { name } };
  if (keepBody) params.responseType = 'text';
  const res = http.get(`${base()}${path}`, params);
  count5xx(res);
  return res;
}

export function post(path, token, body, name, keepBody) {
  const params = { headers: auth(token), tags: { name } };
  if (keepBody) params.responseType = 'text';
  const res = http.post(`${base()}${path}`, JSON.stringify(body), params);
  count5xx(res);
  return res;
}

// The thresholds every scenario has: no oversell, no 5xx.
export function baseThresholds(seats) {
  return {
    server_errors: ['count==0'],
    seats_held: [`count<=${seats}`],
  };
}

export const trendStats = ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'];

// Writes the full end-of-test summary as JSON (env SUMMARY) plus the usual text.
export function summary(d) {
  const out = { stdout: textLine(d) };
  if (__ENV.SUMMARY) out[__ENV.SUMMARY] = JSON.stringify(d, null, 1);
  return out;
}

function textLine(d) {
  const m = d.metrics;
  const v = (k, f) => (m[k] && m[k].values[f] !== undefined ? m[k].values[f] : 0);
  const failed = Object.entries(m).filter(([, x]) => x.thresholds &&
    Object.values(x.thresholds).some((t) => !t.ok)).map(([k]) => k);
  return `  http_reqs=${v('http_reqs', 'count')} (${v('http_reqs', 'rate').toFixed(1)}/s)` +
    ` holds ok=${v('holds_ok', 'count')} conflict=${v('holds_conflict', 'count')} other=${v('holds_other', 'count')}` +
    ` seats_held=${v('seats_held', 'count')} 5xx=${v('server_errors', 'count')}` +
    ` dropped=${v('dropped_iterations', 'count')}` +
    ` hold p95=${v('hold_duration', 'p(95)').toFixed(1)}ms` +
    (failed.length ? `  THRESHOLDS FAILED: ${failed.join(',')}` : '  thresholds ok') + '\n';
}
