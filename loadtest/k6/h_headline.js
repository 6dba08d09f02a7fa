// Scenario H, the headline: USERS users (10,000) arriving as a spike (open
// model: constant-arrival-rate RATE/s until all have arrived; iterations k6
// cannot start in time are reported as dropped_iterations), each trying one
// booking of 1-2 adjacent seats, then paying for it.
// QUEUE=1: through the waiting room: enter -> poll the entry token until
// admitted (at most MAX_WAIT s) -> book with X-Queue-Token (on 409, up to
// ATTEMPTS-1 more tries on seats the seat map shows free) -> pay.
import { sleep } from 'k6';
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import { data, tokens, hold, pay, post, get, seatMap, baseThresholds, trendStats, summary } from './lib.js';

const USERS = Number(__ENV.USERS || 10000);
const RATE = Number(__ENV.RATE || 2000);
const QUEUE = __ENV.QUEUE === '1';
const MAX_WAIT = Number(__ENV.MAX_WAIT || 60);
// k6 cannot read SSE, so waiting users poll for the token instead; every
// 2-6 s keeps 10,000 pollers near 2,500 req/s, what a browser on SSE would
// not cost at all.
const POLL = Number(__ENV.POLL || 4);
// Booking attempts of an admitted user (the first plus retries on free seats).
const ATTEMPTS = Number(__ENV.ATTEMPTS || 3);
const seats = data.seatIds;

const admitted = new Counter('queue_admitted');
const gaveUp = new Counter('queue_gave_up');
const soldOut = new Counter('queue_sold_out');
const queueWait = new Trend('queue_wait', true);

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: trendStats,
  scenarios: {
    spike: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: `${Math.ceil(USERS / RATE)}s`,
      preAllocatedVUs: Number(__ENV.PRE_VUS || (QUEUE ? USERS : 1000)),
      maxVUs: Number(__ENV.MAX_VUS || (QUEUE ? USERS : 3000)),
      gracefulStop: `${QUEUE ? MAX_WAIT + 30 : 30}s`,
    },
  },
  thresholds: baseThresholds(seats.length),
};

export default function () {
  const i = exec.scenario.iterationInTest;
  if (i >= USERS) return;
  const token = tokens[i % tokens.length];
  const k = Math.floor(Math.random() * seats.length);
  const want = Math.random() < 0.5 || k + 1 >= seats.length ? [seats[k]] : [seats[k], seats[k + 1]];
  let queueToken;
  if (QUEUE) {
    const started = Date.now();
    const entered = post('/api/queue/enter', token, { scheduleId: data.scheduleId }, 'queue_enter');
    if (entered.status !== 200) { gaveUp.add(1, { why: `enter_${entered.status}` }); return; }
    while (Date.now() - started < MAX_WAIT * 1000) {
      const res = get(`/api/queue/token?scheduleId=${data.scheduleId}`, token, 'queue_token', true);
      if (res.status === 200) { queueToken = JSON.parse(res.body).token; break; }
      if (res.status !== 409) { gaveUp.add(1, { why: `token_${res.status}` }); return; }
      sleep(POLL * (0.5 + Math.random()));
    }
    if (!queueToken) { gaveUp.add(1, { why: 'timeout' }); return; }
    admitted.add(1);
    queueWait.add(Date.now() - started);
  }
  let res = hold(token, want, { queueToken, keepBody: true });
  // An admitted user whose seats went meanwhile looks at the seat map and
  // tries free seats, as a person would: the entry token survives a failed
  // attempt, and the admission slot is only freed by a hold.
  for (let attempt = 1; QUEUE && res.status === 409 && attempt < ATTEMPTS; attempt++) {
    const map = seatMap(token, true);
    if (map.status !== 200) break;
    const free = JSON.parse(map.body).seats.filter((s) => s.available).map((s) => s.id);
    if (free.length === 0) { soldOut.add(1); break; }
    const j = Math.floor(Math.random() * free.length);
    const again = want.length === 2 && j + 1 < free.length && free[j + 1] === free[j] + 1
      ? [free[j], free[j + 1]] : [free[j]];
    res = hold(token, again, { queueToken, keepBody: true });
  }
  if (res.status === 201) pay(token, JSON.parse(res.body).id);
}

export const handleSummary = summary;
