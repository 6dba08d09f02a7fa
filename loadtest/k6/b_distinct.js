// Scenario B, distinct seats: VUS users each book a different seat at once.
// Every one must succeed, whatever the strategy.
import { data, tokens, hold, baseThresholds, trendStats, summary } from './lib.js';

const VUS = Number(__ENV.VUS || 50);

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: trendStats,
  scenarios: {
    distinct: { executor: 'per-vu-iterations', vus: VUS, iterations: 1, maxDuration: '60s' },
  },
  thresholds: Object.assign(baseThresholds(data.seatIds.length), { holds_ok: [`count==${VUS}`] }),
};

export default function () {
  hold(tokens[(__VU - 1) % tokens.length], [data.seatIds[(__VU - 1) % data.seatIds.length]]);
}

export const handleSummary = summary;
