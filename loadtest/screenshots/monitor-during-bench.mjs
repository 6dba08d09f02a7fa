// Saves docs/screenshots/operator-monitor-bench.png: the operator's monitor
// of the schedule a benchmark is loading, taken mid-run. Run by hand beside
// a bench (not by the tests), from the repository root:
//
//   npm ci --prefix crates/api/web/e2e          # playwright-core, once
//   python3 loadtest/bench/bench.py run --strategy pessimistic --scenarios H-on --runs 1 &
//   node loadtest/screenshots/monitor-during-bench.mjs
//
// The bench's admin has no password (bench.py mints its JWTs with the
// server's secret), so this does the same: it reads the admin's id from the
// bench database and signs an ADMIN token with BOOKING_JWT_SECRET (bench.py's
// dev default unless set), then puts it in the page's session. Nothing in the
// bench changes. It waits for the newest "bench …" concert to appear, opens
// its newest schedule's monitor, and takes the picture once seats are held
// or sold while buyers still wait (or at the deadline), then keeps watching a
// few seconds and prints the page's poll round trips.
//
// Environment: BENCH_URL (http://127.0.0.1:8081), BENCH_PG and BENCH_DB (as
// bench.py), BOOKING_JWT_SECRET, SHOT (the PNG's path), DEADLINE_S (180).

import { createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBrowser } from '../../crates/api/web/e2e/browser.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BASE = process.env.BENCH_URL || 'http://127.0.0.1:8081';
const DB = `${process.env.BENCH_PG || 'postgres://postgres@127.0.0.1:5432'}/${process.env.BENCH_DB || 'booking_bench'}`;
const SECRET = process.env.BOOKING_JWT_SECRET || 'dev-only-secret-change-me-0123456789';
const SHOT = process.env.SHOT || join(ROOT, 'docs', 'screenshots', 'operator-monitor-bench.png');
const DEADLINE = Date.now() + 1000 * Number(process.env.DEADLINE_S || 180);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64 = (data) => Buffer.from(data).toString('base64url');

function adminToken() {
  const id = execFileSync('psql', [DB, '-Atc', "SELECT id FROM users WHERE role = 'ADMIN' ORDER BY id LIMIT 1"])
    .toString()
    .trim();
  if (!id) throw new Error(`no admin in ${DB}`);
  const now = Math.floor(Date.now() / 1000);
  const head = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64(JSON.stringify({ sub: id, role: 'ADMIN', iat: now, exp: now + 3600 }));
  const sig = createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

async function getJson(path, token) {
  const response = await fetch(BASE + path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

/** The newest bench concert created after `after`, and its newest schedule. */
async function benchSchedule(after) {
  while (Date.now() < DEADLINE) {
    try {
      const concerts = (await getJson('/api/concerts')).filter((c) => c.title.startsWith('bench ') && c.id > after);
      if (concerts.length) {
        const concert = concerts.at(-1);
        const schedules = await getJson(`/api/concerts/${concert.id}/schedules`);
        if (schedules.length) return { concert, schedule: schedules.at(-1) };
      }
    } catch {
      // The bench is resetting or starting its instances: ask again.
    }
    await sleep(500);
  }
  throw new Error('no bench schedule appeared before the deadline');
}

async function newestConcertId() {
  try {
    return Math.max(0, ...(await getJson('/api/concerts')).map((c) => c.id));
  } catch {
    return 0;
  }
}

const after = Number(process.env.AFTER_CONCERT ?? (await newestConcertId()));
console.log(`waiting for a bench concert after id ${after} on ${BASE} …`);
const { concert, schedule } = await benchSchedule(after);
const token = adminToken();
console.log(`watching "${concert.title}", schedule ${schedule.id} (${schedule.totalSeats} seats)`);

const browser = await openBrowser({ width: 1280, height: 1000 });
try {
  const { page } = browser;
  await page.addInitScript(
    ([t, email]) => {
      sessionStorage.setItem('booking.token', t);
      sessionStorage.setItem('booking.email', email);
    },
    [token, 'bench-admin@example.com'],
  );
  await page.goto(`${BASE}/operator#/monitor/${concert.id}/${schedule.id}`);
  await page.locator('#guard').filter({ hasText: 'sold twice' }).waitFor({ timeout: 30_000 });

  // Mid-run: a good share of the seats held or sold, buyers still in line.
  let m;
  while (Date.now() < DEADLINE) {
    m = await getJson(`/api/admin/schedules/${schedule.id}/monitor`, token);
    const taken = m.sold + m.held;
    if (taken >= m.totalSeats * 0.3 && (m.waiting ?? 1) > 0 && m.free > 0) break;
    if (m.state === 'sold-out') break;
    await sleep(250);
  }
  await sleep(1200); // two polls: the page shows what the API just said
  await mkdir(dirname(SHOT), { recursive: true });
  await page.screenshot({ path: SHOT, fullPage: true });
  console.log(`saved ${SHOT}: ${JSON.stringify({ state: m.state, sold: m.sold, held: m.held, free: m.free, waiting: m.waiting })}`);

  await sleep(8000);
  const polls = await page.evaluate(() => window.operatorPolls);
  const sorted = [...polls.rtts].sort((a, b) => a - b);
  const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  console.log(
    `page polls: ${polls.count} done, ${polls.failures} failed; round trip of the last ${sorted.length}: ` +
      `median ${pct(0.5)} ms, p90 ${pct(0.9)} ms, max ${sorted.at(-1)} ms`,
  );
} finally {
  await browser.close();
}
