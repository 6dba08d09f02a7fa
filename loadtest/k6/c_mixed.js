// Scenario C, mixed: ramp 0 -> VUS in 10 s, 30 s steady; 70% seat-map reads,
// 30% bookings of one seat, 80% of them on the hottest 20% of the seats.
// Closed model, no think time: it measures what the servers sustain. Each
// VU keeps the ETag of the last map it got and revalidates with it, as a
// browser would: an unchanged map is a 304 without a body.
import { data, tokens, hold, seatMap, baseThresholds, trendStats, summary } from './lib.js';

const VUS = Number(__ENV.VUS || 200);
const seats = data.seatIds;
const hot = Math.max(1, Math.floor(seats.length * 0.2));
// Per VU (each VU has its own copy of the module).
let mapEtag = null;

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: trendStats,
  scenarios: {
    mixed: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [{ duration: '10s', target: VUS }, { duration: '30s', target: VUS }],
      gracefulRampDown: '5s',
      gracefulStop: '10s',
    },
  },
  thresholds: baseThresholds(seats.length),
};

export default function () {
  const token = tokens[(__VU - 1) % tokens.length];
  if (Math.random() < 0.7) {
    const res = seatMap(token, false, mapEtag);
    if (res.status === 200 || res.status === 304) mapEtag = res.headers.Etag || mapEtag;
    return;
  }
  const idx = Math.random() < 0.8
    ? Math.floor(Math.random() * hot)
    : hot + Math.floor(Math.random() * Math.max(1, seats.length - hot));
  hold(token, [seats[Math.min(idx, seats.length - 1)]]);
}

export const handleSummary = summary;
