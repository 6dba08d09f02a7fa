// Scenario S, steady state: holds arrive at a constant RATE per second for
// DURATION (open model), each for ONE seat no hold has asked for before, so
// every hold should win and nothing but the hold path is measured.
// The seats are the SEATS consecutive ids from FIRST_SEAT (the driver
// checks they are consecutive); iteration i holds seat FIRST_SEAT + i as
// user i % (number of tokens). The driver gives enough users that nobody
// holds more than 4 seats of a schedule.
import exec from 'k6/execution';
import { tokens, hold, baseThresholds, trendStats, summary } from './lib.js';

const RATE = Number(__ENV.RATE || 100);
const DURATION = __ENV.DURATION || '30s';
const FIRST_SEAT = Number(__ENV.FIRST_SEAT);
const SEATS = Number(__ENV.SEATS);
// Enough VUs started before the timed part for holds of 100 ms (the p99 the
// ladder stops at): starting VUs mid-run costs k6 CPU and drops arrivals.
// Up to 300 ms before k6 drops arrivals.
const PRE_VUS = Number(__ENV.PRE_VUS || Math.ceil(RATE * 0.1) + 10);
const MAX_VUS = Number(__ENV.MAX_VUS || Math.ceil(RATE * 0.3) + 20);

if (!(FIRST_SEAT > 0) || !(SEATS > 0)) {
  throw new Error('s_steady.js needs FIRST_SEAT and SEATS');
}

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: trendStats,
  scenarios: {
    steady: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: PRE_VUS,
      maxVUs: MAX_VUS,
      gracefulStop: '10s',
    },
  },
  thresholds: baseThresholds(SEATS),
};

export default function () {
  const i = exec.scenario.iterationInTest;
  if (i >= SEATS) {
    // The driver sizes the pool above RATE x DURATION; never reuse a seat.
    exec.test.abort(`iteration ${i} has no fresh seat left (pool of ${SEATS})`);
  }
  hold(tokens[i % tokens.length], [FIRST_SEAT + i]);
}

export const handleSummary = summary;
