// Scenario A, hot seat: VUS users book the same single seat at once
// (per-vu-iterations, 1 each). Exactly one may succeed.
import { data, tokens, hold, baseThresholds, trendStats, summary } from './lib.js';

const VUS = Number(__ENV.VUS || 100);

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: trendStats,
  scenarios: {
    hot_seat: { executor: 'per-vu-iterations', vus: VUS, iterations: 1, maxDuration: '60s' },
  },
  thresholds: Object.assign(baseThresholds(1), { holds_ok: ['count==1'] }),
};

export default function () {
  hold(tokens[(__VU - 1) % tokens.length], [data.seatIds[0]]);
}

export const handleSummary = summary;
