// The HTTP ceiling: GET /health/live on both instances, alternating, VUS
// closed-loop users for DURATION. What the servers (and k6 on the same
// cores) can do when a request does no work.
import http from 'k6/http';
import { Counter } from 'k6/metrics';

const urls = (__ENV.URLS || 'http://127.0.0.1:8081,http://127.0.0.1:8082').split(',');
const serverErrors = new Counter('server_errors');
let rr = __VU;

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'],
  scenarios: {
    ceiling: { executor: 'constant-vus', vus: Number(__ENV.VUS || 200), duration: __ENV.DURATION || '15s' },
  },
  thresholds: { server_errors: ['count==0'] },
};

export default function () {
  rr += 1;
  const res = http.get(`${urls[rr % urls.length]}/health/live`, { tags: { name: 'live' } });
  if (res.status >= 500 || res.status === 0) serverErrors.add(1);
}

export function handleSummary(d) {
  const out = { stdout: `  http_reqs=${d.metrics.http_reqs.values.count} (${d.metrics.http_reqs.values.rate.toFixed(1)}/s)\n` };
  if (__ENV.SUMMARY) out[__ENV.SUMMARY] = JSON.stringify(d, null, 1);
  return out;
}
