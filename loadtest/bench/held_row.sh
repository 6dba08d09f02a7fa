#!/usr/bin/env bash
# What the `reservation.held` outbox row costs a hold, in the database.
#
# pgbench runs a hold's writes as prepared statements in one transaction, as
# insert_pending_reservation does (the seat's conditional UPDATE, the
# reservation INSERT, its seat link), without and with the outbox row
# (write_outbox: one more statement, today), and both again with the
# reservation, its link and its row in one statement. In turn, RUNS times each, on a
# database of its own (migrations applied with psql; dropped at the end).
# Before every run each seat is AVAILABLE again and the written rows are
# truncated.
#
# The app's hold has more round trips than this (BEGIN, the local timeouts,
# LOCK_SEATS, the checks), so the row's share of a real hold is smaller
# than the share measured here.
#
#   loadtest/bench/held_row.sh            (or: just bench-held-row)
#   CLIENTS=32 DURATION=20 RUNS=5 loadtest/bench/held_row.sh
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SERVER="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
DB="${HELD_ROW_DB:-booking_held_row_bench}"
URL="$SERVER/$DB"
CLIENTS="${CLIENTS:-32}" # the two instances' pools of 16
DURATION="${DURATION:-20}"
RUNS="${RUNS:-5}"
SEATS=400000
WORK="$(mktemp -d)"
export PGOPTIONS="-c client_min_messages=warning"

q() { psql "$URL" -v ON_ERROR_STOP=1 -qtAX -c "$1"; }
cleanup() {
    psql "$SERVER/postgres" -qtAX -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

psql "$SERVER/postgres" -v ON_ERROR_STOP=1 -qtAX -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null
psql "$SERVER/postgres" -v ON_ERROR_STOP=1 -qtAX -c "CREATE DATABASE \"$DB\"" >/dev/null
for up in "$ROOT"/migrations/*/up.sql; do
    psql "$URL" -v ON_ERROR_STOP=1 -qX -f "$up" >/dev/null
done
USER_ID="$(q "INSERT INTO users (email, nickname, password_hash) VALUES ('held-row@bench.example', 'held-row', 'unused') RETURNING id" | head -1)"
CONCERT_ID="$(q "INSERT INTO concerts (title, artist, venue) VALUES ('held-row', 'pgbench', 'pgbench') RETURNING id" | head -1)"
SCHEDULE_ID="$(q "INSERT INTO concert_schedules (concert_id, starts_at, total_seats) VALUES ($CONCERT_ID, now() + interval '30 days', $SEATS) RETURNING id" | head -1)"
q "INSERT INTO seats (schedule_id, section, row_number, seat_number, price)
   SELECT $SCHEDULE_ID, 'P', g / 1000, g % 1000, 15000 FROM generate_series(0, $SEATS - 1) g"
IFS='|' read -r LO HI < <(q "SELECT min(id), max(id) FROM seats")

# Every script is one hold; `:held` is 0 when the random seat was taken.
SEAT='\set seat random(:lo, :hi)
BEGIN;
WITH s AS (UPDATE seats SET status = '"'HELD'"', version = version + 1
            WHERE id = :seat AND status = '"'AVAILABLE'"' RETURNING price)
SELECT count(*) AS held, coalesce(max(price), 0) AS price FROM s \gset
\if :held'
RESERVATION="INSERT INTO reservations (user_id, schedule_id, status, total_amount, expires_at, created_at, updated_at)
     VALUES (:uid, :sid, 'PENDING', :price, now() + interval '5 minutes', now(), now()) RETURNING id AS rid"
EVENT="'reservation.held', CAST(rid AS text),
       jsonb_build_object('reservationId', rid, 'userId', CAST(:uid AS bigint),
                          'scheduleId', CAST(:sid AS bigint),
                          'seatIds', jsonb_build_array(CAST(:seat AS bigint)), 'status', 'PENDING',
                          'totalAmount', CAST(:price AS bigint), 'occurredAt', now()),
       jsonb_build_object('request-id', 'pgbench-' || rid)"
END='\endif
COMMIT;'

# Today's hold: one statement per row (the outbox row by write_outbox).
cat >"$WORK/without.sql" <<SQL
$SEAT
$RESERVATION \gset
INSERT INTO reservation_seats (reservation_id, seat_id) VALUES (:rid, :seat);
$END
SQL
cat >"$WORK/with.sql" <<SQL
$SEAT
$RESERVATION \gset
INSERT INTO reservation_seats (reservation_id, seat_id) VALUES (:rid, :seat);
INSERT INTO outbox (topic, key, payload, headers) SELECT $EVENT FROM (SELECT CAST(:rid AS bigint) AS rid) r;
$END
SQL
# The alternative: the reservation, its seat link (and its outbox row) in
# one statement, so the row costs no round trip of its own.
cat >"$WORK/one-without.sql" <<SQL
$SEAT
WITH r AS ($RESERVATION),
     l AS (INSERT INTO reservation_seats (reservation_id, seat_id) SELECT rid, :seat FROM r)
SELECT rid FROM r;
$END
SQL
cat >"$WORK/one-with.sql" <<SQL
$SEAT
WITH r AS ($RESERVATION),
     l AS (INSERT INTO reservation_seats (reservation_id, seat_id) SELECT rid, :seat FROM r),
     o AS (INSERT INTO outbox (topic, key, payload, headers) SELECT $EVENT FROM r)
SELECT rid FROM r;
$END
SQL

run() { # $1: a variant; prints holds/s
    q "TRUNCATE reservation_seats, reservations, outbox CASCADE;
       UPDATE seats SET status = 'AVAILABLE', version = 0 WHERE status <> 'AVAILABLE'" >/dev/null
    q "VACUUM ANALYZE seats" >/dev/null
    if ! pgbench -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION" \
        -D lo="$LO" -D hi="$HI" -D uid="$USER_ID" -D sid="$SCHEDULE_ID" \
        -f "$WORK/$1.sql" "$URL" >"$WORK/$1.out" 2>&1; then
        echo "pgbench failed on the $1 variant:" >&2
        grep -m3 -i error "$WORK/$1.out" >&2 || tail -5 "$WORK/$1.out" >&2
        exit 1
    fi
    awk -F'[ =]+' '/^tps/ {printf "%.0f", $2}' "$WORK/$1.out"
}
written() {
    q "SELECT (SELECT count(*) FROM reservations) || ' holds, '
           || (SELECT count(*) FROM reservation_seats) || ' links, '
           || (SELECT count(*) FROM outbox) || ' outbox rows'"
}

VARIANTS=(without with one-without one-with)
echo "holds per second (pgbench transactions), $CLIENTS clients, $DURATION s a run; in turn: ${VARIANTS[*]}"
declare -A rates
for i in $(seq 1 "$RUNS"); do
    for v in "${VARIANTS[@]}"; do
        r="$(run "$v")"
        rates[$v]+="$r "
        printf 'run %s %-11s %6s/s  (%s; load %s)\n' "$i" "$v" "$r" "$(written)" "$(cut -d' ' -f1-3 /proc/loadavg)"
    done
done
python3 - "${rates[without]}" "${rates[with]}" "${rates[one-without]}" "${rates[one-with]}" <<'PY'
import statistics, sys
runs = [[float(x) for x in a.split()] for a in sys.argv[1:5]]
names = ["statement per row, without the held row", "statement per row, with it (today)",
         "one statement, without the held row", "one statement, with it"]
base = statistics.median(runs[0])
for name, xs in zip(names, runs):
    m = statistics.median(xs)
    print(f"median {name:<42} {m:>7,.0f}/s  {100 * (m - base) / base:+6.1f}% vs today without the row")
for label, a, b in (("statement per row", 0, 1), ("one statement", 2, 3)):
    costs = sorted(100 * (x - y) / x for x, y in zip(runs[a], runs[b]))
    print(f"the row's cost, {label}: median of the run pairs {statistics.median(costs):.1f}% (pairs {', '.join(f'{c:.0f}%' for c in costs)})")
PY
