// The chaos load (loadtest/chaos/chaos.py): a bounded mixed booking load
// through both instances while the driver injects one fault. Open model:
// RATE booking attempts a second for DURATION; each attempt holds one or two
// adjacent random seats and, when it got them, pays (PAY), cancels (CANCEL)
// or leaves the hold to expire (the rest), so holds, payments, cancels and
// expiries all happen during the fault. Requests go through the driver's
// nginx (data.lb) when there is one, else alternate between the instances.
// Every hold and payment carries a fresh Idempotency-Key (KEYS=0: none), so
// nginx may send it again to the other instance; cancels carry none. Every
// hold, payment and cancel is a history line (as lib.js's HISTORY=1, plus
// `inst`: which instance answered, `keyed`, `tries`: instances nginx tried,
// `replayed`) for `history-check`, and for the driver's error and recovery
// figures.
import http from 'k6/http';
import exec from 'k6/execution';
import encoding from 'k6/encoding';
import { Counter } from 'k6/metrics';
import { data, tokens, trendStats, summary } from './lib.js';

const RATE = Number(__ENV.RATE || 300);
const DURATION = Number(__ENV.DURATION || 75);
const PAY = Number(__ENV.PAY || 0.15);
const CANCEL = Number(__ENV.CANCEL || 0.45);
// A request to a killed instance fails at once (refused) or, when it was in
// flight, with a reset; a stuck one gives up after this.
const TIMEOUT = __ENV.REQ_TIMEOUT || '10s';
const KEYS = (__ENV.KEYS || '1') !== '0';
const seats = data.seatIds;
const LB = data.lb || null;
// Instance index by port, to read nginx's X-Upstream ("host:port[, host:port]").
const PORTS = data.urls.map((u) => u.split(':').pop());

const holdsOk = new Counter('holds_ok');
const holdsConflict = new Counter('holds_conflict');
const holdsOther = new Counter('holds_other');
const seatsHeld = new Counter('seats_held');
const serverErrors = new Counter('server_errors');
const paymentsOk = new Counter('payments_ok');
const cancelsOk = new Counter('cancels_ok');

// 409 (taken, sold out, contention) and 410 (expired) are expected answers.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 399 }, 409, 410));

export const options = {
  discardResponseBodies: false,
  summaryTrendStats: trendStats,
  scenarios: {
    chaos: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: `${DURATION}s`,
      preAllocatedVUs: Number(__ENV.PRE_VUS || 200),
      maxVUs: Number(__ENV.MAX_VUS || 1000),
      gracefulStop: '15s',
    },
  },
};

const users = {};
function userOf(token) {
  if (!(token in users)) {
    users[token] = Number(JSON.parse(encoding.b64decode(token.split('.')[1], 'rawurl', 's')).sub);
  }
  return users[token];
}

let rr = __VU;
function instance() {
  rr += 1;
  return rr % data.urls.length;
}

function newKey(op) {
  return `${op}-${exec.vu.idInTest}-${exec.vu.iterationInInstance}-${Math.random().toString(36).slice(2, 10)}`;
}

function send(op, method, inst, path, body, token, seatIds, reservation, key) {
  const start = Date.now();
  const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
  if (key) headers['Idempotency-Key'] = key;
  const res = http.request(method, `${LB || data.urls[inst]}${path}`, body === null ? null : JSON.stringify(body), {
    headers,
    tags: { name: op },
    timeout: TIMEOUT,
  });
  let tries = 1;
  if (LB) {
    // Which instances nginx tried: the last one answered.
    const up = (res.headers['X-Upstream'] || '').split(',').map((x) => x.trim()).filter((x) => x);
    tries = up.length;
    inst = up.length ? PORTS.indexOf(up[up.length - 1].split(':').pop()) : -1;
  }
  let id = reservation;
  if (op === 'hold' && res.status === 201) {
    try { id = JSON.parse(res.body).id; } catch (e) { id = null; }
  }
  console.log(JSON.stringify({
    start: new Date(start).toISOString(),
    end: new Date(Date.now() + 1).toISOString(), // ms precision: round the answer up
    user: userOf(token), op, seats: seatIds, reservation: id, status: res.status, inst,
    keyed: !!key, key: key || undefined, tries, replayed: res.headers['Idempotent-Replayed'] === 'true',
  }));
  if (res.status >= 500 || res.status === 0) serverErrors.add(1, { status: String(res.status), op });
  return [res, id];
}

export default function () {
  const i = exec.scenario.iterationInTest;
  const token = tokens[i % tokens.length];
  const k = Math.floor(Math.random() * seats.length);
  const want = Math.random() < 0.5 || k + 1 >= seats.length ? [seats[k]] : [seats[k], seats[k + 1]];
  const [res, id] = send('hold', 'POST', instance(), '/api/reservations',
    { scheduleId: data.scheduleId, seatIds: want }, token, want, null, KEYS ? newKey('h') : null);
  if (res.status === 409) { holdsConflict.add(1); return; }
  if (res.status !== 201 || !id) { holdsOther.add(1, { status: String(res.status) }); return; }
  holdsOk.add(1);
  seatsHeld.add(want.length);
  const r = Math.random();
  if (r < PAY) {
    const [p] = send('pay', 'POST', instance(), '/api/payments', { reservationId: id }, token, [], id,
      KEYS ? newKey('p') : null);
    if (p.status === 201 || p.status === 200) paymentsOk.add(1);
  } else if (r < PAY + CANCEL) {
    const [c] = send('cancel', 'DELETE', instance(), `/api/reservations/${id}`, null, token, [], id, null);
    if (c.status === 200) cancelsOk.add(1);
  }
}

export const handleSummary = summary;
