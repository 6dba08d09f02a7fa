#!/usr/bin/env bash
# loadtest/sse-load/run.sh — 10,000 waiting-room SSE streams against one
# API instance on this machine, held 60 s, then a graceful shutdown with
# every stream still open.
#
#   1. builds the API and sse-load in release mode;
#   2. recreates the database booking_sse_load and clears the sseload: keys;
#   3. starts the API natively on 127.0.0.1:8080 (entry tokens live 5 s, so
#      admission windows of 100 churn during the run and admission order can
#      be watched well beyond the first window);
#   4. as the admin, creates a concert and a schedule through the API;
#   5. runs sse-load, which at the end sends SIGTERM to the server and
#      watches it end the streams;
#   6. checks the server exited 0, deletes the sseload: keys, and prints
#      where the results are.
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, no password) and Redis
# on 127.0.0.1:6379 (deploy/local/up), plus psql, redis-cli, curl and jq.
# Everything stays on 127.0.0.1. Sizes can be changed from the environment:
#   CONNECTIONS=2000 HOLD_SECS=20 loadtest/sse-load/run.sh
# ADMIT_RATE sets queue.admit_rate_per_sec (default 1/s, so the streams stay
# open); EXTRA_WAITING enters that many more users (no stream) before the
# streams, to compare the cost of a tick with a short and a long line.
set -euo pipefail

cd "$(dirname "$0")/../.."

CONNECTIONS=${CONNECTIONS:-10000}
HOLD_SECS=${HOLD_SECS:-60}
CONNECT_RATE=${CONNECT_RATE:-1000}
ADMIT_RATE=${ADMIT_RATE:-1}
EXTRA_WAITING=${EXTRA_WAITING:-0}
TARGET=${CARGO_TARGET_DIR:-target}
PORT=8080
BASE_URL=http://127.0.0.1:${PORT}
PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres
DB_NAME=booking_sse_load
DB_URL=postgres://postgres@127.0.0.1:5432/${DB_NAME}
REDIS_URL=redis://127.0.0.1:6379
KEY_PREFIX=sseload:
OUT_DIR=${OUT_DIR:-target/sse-load}
RESULT=${OUT_DIR}/result.json
SERVER_LOG=${OUT_DIR}/server.log
ADMIN_EMAIL=sse-load-admin@example.com
ADMIN_PASSWORD=sse-load-admin-password-1
# A throwaway key for this local run only.
JWT_SECRET=sse-load-local-only-secret-0123456789abcdef

log() { printf '[sse-load/run] %s\n' "$*"; }
die() { printf '[sse-load/run] ERROR: %s\n' "$*" >&2; exit 1; }

for tool in cargo psql redis-cli curl jq; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done
if curl -fsS -o /dev/null --max-time 2 "${BASE_URL}/health/live" 2>/dev/null; then
    die "something already answers on ${BASE_URL}; stop it first (this script starts its own server)"
fi

mkdir -p "$OUT_DIR"
{
    echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc:   $(nproc)"
    echo "memory:  $(free -h | awk '/^Mem:/ { print $2 }')"
    echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "kernel:  $(uname -sr)"
    echo "rustc:   $(rustc --version)"
    echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)')"
} >"${OUT_DIR}/machine.txt"
cat "${OUT_DIR}/machine.txt"

log "building the API and sse-load (release)"
cargo build --release -p booking-api -p booking-sse-load

delete_keys() {
    redis-cli -u "$REDIS_URL" --scan --pattern "${KEY_PREFIX}*" | xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null
}

log "recreating database ${DB_NAME}; clearing ${KEY_PREFIX}* keys"
psql -X -q -v ON_ERROR_STOP=1 "$PG_ADMIN_URL" \
    -c "DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)" \
    -c "CREATE DATABASE ${DB_NAME}"
delete_keys

# Both processes hold one descriptor per stream.
ulimit -n "$(ulimit -Hn)"
log "open files limit: $(ulimit -n)"

SERVER_PID=
stop_server() {
    [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null || return 0
    log "stopping the server (pid ${SERVER_PID})"
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 30; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || return 0
        sleep 1
    done
    log "the server ignored SIGTERM for 30 s: SIGKILL"
    kill -KILL "$SERVER_PID" 2>/dev/null || true
}
cleanup() {
    stop_server
    delete_keys || true
}
trap cleanup EXIT

log "starting the API on ${BASE_URL} (log: ${SERVER_LOG})"
BOOKING__SERVER__HOST=127.0.0.1 \
    BOOKING__SERVER__PORT=$PORT \
    BOOKING__DATABASE__URL=$DB_URL \
    BOOKING__REDIS__URL=$REDIS_URL \
    BOOKING__REDIS__KEY_PREFIX=$KEY_PREFIX \
    BOOKING__QUEUE__TOKEN_TTL_SECS=5 \
    BOOKING__QUEUE__ADMIT_RATE_PER_SEC=$ADMIT_RATE \
    BOOKING__LOG__FORMAT=text \
    NO_COLOR=1 \
    BOOKING_JWT_SECRET=$JWT_SECRET \
    BOOKING_ADMIN_EMAIL=$ADMIN_EMAIL \
    BOOKING_ADMIN_PASSWORD=$ADMIN_PASSWORD \
    "$TARGET/release/booking" serve >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

for ((i = 0; i < 60; i++)); do
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$SERVER_LOG" >&2; die "the server exited during start-up"; }
    curl -fsS -o /dev/null --max-time 2 "${BASE_URL}/health/ready" 2>/dev/null && break
    sleep 1
done
curl -fsS -o /dev/null --max-time 2 "${BASE_URL}/health/ready" || die "the server is not ready after 60 s"
log "server ready (pid ${SERVER_PID})"

post_json() { # <url> <token> <json>
    curl -fsS --max-time 10 -X POST "$1" -H "Authorization: Bearer $2" \
        -H 'Content-Type: application/json' -d "$3"
}

ADMIN_TOKEN=$(curl -fsS --max-time 10 -X POST "${BASE_URL}/api/auth/login" \
    -H 'Content-Type: application/json' \
    -d "$(jq -nc --arg e "$ADMIN_EMAIL" --arg p "$ADMIN_PASSWORD" '{email: $e, password: $p}')" |
    jq -er .token)
CONCERT_ID=$(post_json "${BASE_URL}/api/admin/concerts" "$ADMIN_TOKEN" \
    '{"title":"SSE load","artist":"sse-load","venue":"127.0.0.1","description":"waiting-room load test"}' |
    jq -er .id)
STARTS_AT=$(date -u -d '+30 days' +%Y-%m-%dT20:00:00Z)
SCHEDULE_ID=$(post_json "${BASE_URL}/api/admin/concerts/${CONCERT_ID}/schedules" "$ADMIN_TOKEN" \
    "{\"startsAt\":\"${STARTS_AT}\",\"sections\":[{\"name\":\"A\",\"rows\":10,\"seatsPerRow\":100,\"price\":15000}]}" |
    jq -er .id)
log "concert ${CONCERT_ID}, schedule ${SCHEDULE_ID} (1,000 seats)"

if ((EXTRA_WAITING > 0)); then
    log "entering ${EXTRA_WAITING} more users ahead of the streams (no stream)"
    JWT_SECRET=$JWT_SECRET python3 - "$BASE_URL" "$SCHEDULE_ID" "$EXTRA_WAITING" <<'PY'
import base64, hashlib, hmac, http.client, json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
base, schedule, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
host, port = base.split("//")[1].split(":")
secret = os.environ["JWT_SECRET"].encode()
b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=")
def jwt(user):
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    now = int(time.time())
    body = b64(json.dumps({"sub": str(user), "role": "USER", "iat": now, "exp": now + 3600}).encode())
    sig = b64(hmac.new(secret, head + b"." + body, hashlib.sha256).digest())
    return (head + b"." + body + b"." + sig).decode()
def enter(user):
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.request("POST", "/api/queue/enter", json.dumps({"scheduleId": schedule}),
              {"Authorization": "Bearer " + jwt(user), "Content-Type": "application/json"})
    status = c.getresponse().status
    c.close()
    return status
with ThreadPoolExecutor(32) as pool:
    statuses = list(pool.map(enter, range(2_000_000, 2_000_000 + n)))
bad = [s for s in statuses if s != 200]
if bad:
    sys.exit(f"{len(bad)} enters failed: {sorted(set(bad))}")
PY
fi

# Redis is sampled too (single-threaded: a likely limit), and its command
# counters are kept before and after (the Redis may be shared: diff them).
REDIS_PID=$(redis-cli -u "$REDIS_URL" info server | tr -d '\r' | awk -F: '/^process_id:/ { print $2 }')
ALSO_SAMPLE=()
[[ -n $REDIS_PID ]] && ALSO_SAMPLE=(--also-sample "redis=${REDIS_PID}")
redis-cli -u "$REDIS_URL" info commandstats | tr -d '\r' >"${OUT_DIR}/redis-commandstats.before"

log "sse-load: ${CONNECTIONS} streams, held ${HOLD_SECS} s, ${CONNECT_RATE} new/s"
set +e
BOOKING_JWT_SECRET=$JWT_SECRET "$TARGET/release/sse-load" \
    --base-url "$BASE_URL" \
    --schedule-id "$SCHEDULE_ID" \
    --connections "$CONNECTIONS" \
    --hold-secs "$HOLD_SECS" \
    --connect-rate "$CONNECT_RATE" \
    --server-pid "$SERVER_PID" \
    --shutdown-server \
    "${ALSO_SAMPLE[@]}" \
    --out "$RESULT"
LOAD_STATUS=$?
set -e
redis-cli -u "$REDIS_URL" info commandstats | tr -d '\r' >"${OUT_DIR}/redis-commandstats.after"
# cmdstat_<name>:calls=N,usec=N,... -> the change of calls and usec per command.
awk -F'[:,=]' '
    /^cmdstat_/ { calls = $3; usec = $5
                  if (FNR == NR) { c[$1] = calls; u[$1] = usec; next }
                  dc = calls - c[$1]; du = usec - u[$1]
                  if (dc > 0) printf "%-24s calls %9d  usec %12d  usec/call %8.1f\n", substr($1, 9), dc, du, du / dc }
' "${OUT_DIR}/redis-commandstats.before" "${OUT_DIR}/redis-commandstats.after" |
    sort -k5 -n -r >"${OUT_DIR}/redis-commandstats.diff"
log "Redis commands during the run (all clients of this Redis):"
cat "${OUT_DIR}/redis-commandstats.diff"

# sse-load sent SIGTERM after the hold; the server must be gone, with 0.
SERVER_STATUS=
for ((i = 0; i < 30; i++)); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID" && SERVER_STATUS=0 || SERVER_STATUS=$?
        break
    fi
    sleep 1
done
if [[ -z $SERVER_STATUS ]]; then
    log "the server is still running 30 s after sse-load finished"
    stop_server
    wait "$SERVER_PID" && SERVER_STATUS=0 || SERVER_STATUS=$?
    SERVER_STATUS="${SERVER_STATUS} (stopped by this script)"
fi
SERVER_PID=

panics=$(grep -c 'panicked' "$SERVER_LOG" || true)
errors=$(grep -cw 'ERROR' "$SERVER_LOG" || true)
warnings=$(grep -cw 'WARN' "$SERVER_LOG" || true)
log "server exit status: ${SERVER_STATUS}; log: ${panics} panics, ${errors} ERROR, ${warnings} WARN lines"
if [[ -s $RESULT ]]; then
    jq -r '"streams ended by the server on SIGTERM: \(.shutdown.endedCleanly) of \(.shutdown.openAtSigterm) cleanly, \(.shutdown.endedWithError) with an error, \(.shutdown.stillOpenAfterWait) still open"' "$RESULT"
fi
log "results: ${RESULT} (machine: ${OUT_DIR}/machine.txt, server log: ${SERVER_LOG})"
[[ $LOAD_STATUS -eq 0 ]] || die "sse-load failed with status ${LOAD_STATUS}"
[[ $SERVER_STATUS == 0 ]] || die "the server did not exit cleanly: ${SERVER_STATUS}"
