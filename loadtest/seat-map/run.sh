#!/usr/bin/env bash
# loadtest/seat-map/run.sh — requests/s of the seat map beside the
# /health/live ceiling, from one `booking` binary, in one run.
#
#   1. recreates the database booking_seat_map and starts the binary on
#      127.0.0.1:$PORT (waiting room off, no Redis, no Kafka);
#   2. as the admin, creates a schedule of 1,000 seats (20 x 50) and holds
#      four of them, so the map is not uniform;
#   3. runs wrk (10 s, 20 connections, 2 threads) on /health/live, the seat
#      map, every extra path suffix given (e.g. /statuses /layout), the map
#      with a matching If-None-Match when the binary sends an ETag, and
#      /health/live again;
#   4. prints the seat-map series of /metrics, and stops the server by pid.
#
#   loadtest/seat-map/run.sh BINARY LABEL [SUFFIX...]
#   e.g. (a build of main, then this branch, into one's own target dir)
#   loadtest/seat-map/run.sh /tmp/booking-before before
#   loadtest/seat-map/run.sh target/release/booking after /statuses /layout
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, no password), wrk, curl,
# jq and psql. Everything stays on 127.0.0.1. Results in
# ${OUT_DIR:-/tmp/seat-map-bench}/LABEL/ (summary.txt and wrk's output).
set -euo pipefail

BIN=$1
LABEL=$2
shift 2
PORT=${PORT:-18100}
B=http://127.0.0.1:$PORT
PG=postgres://postgres@127.0.0.1:5432
OUT=${OUT_DIR:-/tmp/seat-map-bench}/$LABEL
mkdir -p "$OUT"
: >"$OUT/summary.txt"

psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS booking_seat_map" -c "CREATE DATABASE booking_seat_map"

export BOOKING__DATABASE__URL=$PG/booking_seat_map
export BOOKING__QUEUE__ENABLED=false
export BOOKING__SERVER__PORT=$PORT
export BOOKING__LOG__FILTER=warn
export BOOKING_JWT_SECRET=seat-map-bench-secret-seat-map-bench-0123
export BOOKING_ADMIN_EMAIL=admin@example.com
export BOOKING_ADMIN_PASSWORD=admin-password
unset BOOKING__REDIS__URL BOOKING__EVENTS__KAFKA_BROKERS || true

"$BIN" serve >"$OUT/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs "$B/health/live" >/dev/null && break
  sleep 0.2
done

json() { curl -fs -H 'content-type: application/json' -H "authorization: Bearer ${TOKEN:-}" -d "$2" "$B$1"; }
TOKEN=$(json /api/auth/login '{"email":"admin@example.com","password":"admin-password"}' | jq -r .token)
CONCERT=$(json /api/admin/concerts '{"title":"Bench","artist":"Band","venue":"Hall"}' | jq .id)
SCHEDULE=$(json "/api/admin/concerts/$CONCERT/schedules" \
  '{"startsAt":"2030-01-01T20:00:00Z","sections":[{"name":"A","rows":20,"seatsPerRow":50,"price":5000}]}' | jq .id)
MAP=/api/concerts/$CONCERT/schedules/$SCHEDULE/seats
FIRST=$(curl -fs "$B$MAP" | jq '.seats[0].id')
for i in 0 7 100 501; do
  json /api/reservations "{\"scheduleId\":$SCHEDULE,\"seatIds\":[$((FIRST + i))]}" >/dev/null
done
sleep 1 # past the max age, so the map shows the holds
curl -fs "$B$MAP" | wc -c | xargs echo "seat map bytes:" | tee -a "$OUT/summary.txt"

run() {
  local name=$1 path=$2
  shift 2
  wrk -t2 -c20 -d10s --latency "$@" "$B$path" >"$OUT/$name.txt"
  echo "$name $path: $(awk '/Requests\/sec/{print $2}' "$OUT/$name.txt") req/s," \
    "p50 $(awk '/ 50%/{print $2}' "$OUT/$name.txt")," \
    "p99 $(awk '/ 99%/{print $2}' "$OUT/$name.txt")" | tee -a "$OUT/summary.txt"
}
run live /health/live
run seat-map "$MAP"
for suffix in "$@"; do
  run "seat-map${suffix//\//-}" "$MAP$suffix"
done
ETAG=$(curl -fs -D - -o /dev/null "$B$MAP" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r')
if [ -n "$ETAG" ]; then
  run seat-map-304 "$MAP" -H "If-None-Match: $ETAG"
fi
run live-again /health/live
curl -fs "$B/metrics" | grep -E '^booking_seat_map' | tee -a "$OUT/summary.txt" || true
