#!/usr/bin/env bash
# Checkout on PostgreSQL: order creation + checkout (mock provider) through the gateway, with a
# unique Idempotency-Key per request, against pgbench running the very statements payment-ms
# issued for one such checkout (captured from PostgreSQL's log). Prints checkouts per second
# for both and the ratio. Everything on 127.0.0.1; creates and drops its own database; stops
# what it started.
#
#   bench/checkout.sh                        # RUNS=3 DURATION=10 CONNECTIONS=16
#   RUNS=1 DURATION=2 bench/checkout.sh      # a quick check
#   STOCK=1 bench/checkout.sh                # the order's two SKUs tracked: each checkout holds
#                                            # them (built-in inventory), pgbench replays that too
#
# BENCH_DATABASE_URL: a PostgreSQL server where it may create a database (default: the local
# one, trust auth). PG_LOG: that server's log file (default: the newest in /var/log/postgresql).
# The pgbench script it made, and the services' logs, are left in target/bench/. STACK_ONLY=1 skips pgbench
# (to profile the stack while it runs).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
admin_url=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
pg_log=${PG_LOG:-$(ls -t /var/log/postgresql/*.log 2> /dev/null | head -n 1)}
[ -r "$pg_log" ] || { echo "checkout.sh: cannot read PostgreSQL's log (set PG_LOG)" >&2; exit 2; }

need=()
command -v wrk > /dev/null || need+=(wrk)
command -v pgbench > /dev/null || need+=(postgresql-contrib)
command -v psql > /dev/null || need+=(postgresql-client)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" > /dev/null
fi
source bench/lib.sh
build_bins
# PAYMENT_MS_BIN compares another build of payment-ms (an A/B of one change).
ms_bin=${PAYMENT_MS_BIN:-$bin/payment-ms}

db="bench_checkout_$$"
db_url="${admin_url%/*}/$db"
work=$(mktemp -d)
pids=()
ms_pid=
cleanup() {
  for pid in "${pids[@]}" $ms_pid; do kill "$pid" 2> /dev/null || true; done
  wait 2> /dev/null || true
  psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" > /dev/null 2>&1 || true
  mkdir -p target/bench && cp "$work"/*.log target/bench/ 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
psql -q "$admin_url" -c "CREATE DATABASE $db"

secret=$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n')
ms=127.0.0.1:28181
gw=127.0.0.1:28180
export RUST_LOG=warn APP_PROFILE=dev JWT_HS256_SECRET="$secret" INTERNAL_TOKEN="bench-$secret" \
  RATE_LIMIT_USER_PER_SECOND=0 RATE_LIMIT_IP_PER_SECOND=0 WEBHOOK_ENABLED=false \
  DATABASE_URL="$db_url" DATABASE_MAX_CONNECTIONS=${DATABASE_MAX_CONNECTIONS:-16} \
  PAYMENT_MS_ADDR=$ms PUBLIC_BASE_URL="http://$gw"

start_ms() {
  "$ms_bin" >> "$work/ms.log" 2>&1 &
  ms_pid=$!
  for _ in $(seq 1 200); do curl -sf "http://$ms/readyz" > /dev/null && return; sleep 0.05; done
  echo "payment-ms did not start:" >&2; cat "$work/ms.log" >&2; exit 1
}

# 1. Capture: payment-ms's sessions log every statement while one checkout runs.
psql -q "$db_url" -c "ALTER DATABASE $db SET log_statement = 'all'"
# The expiry sweep runs once at start and then every 30 s; keep it out of the captured window.
EXPIRY_SWEEP_INTERVAL=1h start_ms
sleep 1
GATEWAY_ADDR=$gw PAYMENT_MS_URL="http://$ms" "$bin/gateway" > "$work/gw.log" 2>&1 &
gw_pid=$!
pids+=($gw_pid)
for _ in $(seq 1 200); do curl -sf "http://$gw/readyz" > /dev/null && break; sleep 0.05; done
export USER_TOKEN SERVICE_TOKEN
USER_TOKEN=$("$bin/gateway" token --sub bench_user --ttl 1h)
SERVICE_TOKEN=$("$bin/gateway" token --sub bench_shop --roles service --ttl 1h)

if [ -n "${STOCK:-}" ]; then
  # Both SKUs tracked, with more than any run can hold: every checkout holds one row of each
  # (the same two rows for all: a hot product).
  for sku in mug tee; do
    curl -sf -X PUT "http://$gw/api/v1/inventory/$sku" -H "Authorization: Bearer $SERVICE_TOKEN" \
      -H 'content-type: application/json' -d '{"on_hand": 1000000000}' > /dev/null
  done
fi
offset=$(stat -c %s "$pg_log")
marker() { psql -q "$db_url" -c "SELECT 'bench-capture-$1'" > /dev/null; }
marker start
order=$(curl -sf -X POST "http://$gw/api/v1/orders" -H "Authorization: Bearer $SERVICE_TOKEN" \
  -H 'content-type: application/json' -H 'Idempotency-Key: capture-order' \
  -d '{"user_id":"bench_user","currency":"usd","items":[{"sku":"tee","name":"T-shirt","quantity":2,"unit_price":1999},{"sku":"mug","name":"Mug","quantity":1,"unit_price":850}]}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
curl -sf -X POST "http://$gw/api/v1/orders/$order/checkout" -H "Authorization: Bearer $USER_TOKEN" \
  -H 'content-type: application/json' -H 'Idempotency-Key: capture-checkout' \
  -d '{"success_url":"https://shop.example/ok","cancel_url":"https://shop.example/no"}' > /dev/null
marker end
sleep 0.5 # the log is written asynchronously
python3 bench/pg_statements.py "$pg_log" "$offset" "$db" > "$work/checkout.sql"
mkdir -p target/bench && cp "$work/checkout.sql" target/bench/checkout.sql # for reading

# 2. Load: payment-ms restarted without statement logging.
psql -q "$db_url" -c "ALTER DATABASE $db RESET log_statement"
kill "$ms_pid"; wait "$ms_pid" 2> /dev/null || true
start_ms

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
variant="order + checkout"
[ -n "${STOCK:-}" ] && variant="order + checkout holding 2 tracked SKUs"
echo "PostgreSQL $(psql -Atq "$db_url" -c 'SHOW server_version'); $(grep -c ';$' "$work/checkout.sql") statements per checkout ($variant) replayed by pgbench"
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s bench/checkout.lua; pgbench -n -c $CONNECTIONS -j $THREADS -T $DURATION"
# What one checkout costs each process (bench/lib.sh). PostgreSQL's backends come and go: each
# is read as it is listed.
pg_ticks() { cpu_ticks $(pgrep -u postgres); }
# The whole machine's busy time (user, nice, system, irq, softirq), in clock ticks.
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }

for run in $(seq 1 "$RUNS"); do
  ms0=$(cpu_ticks "$ms_pid"); gw0=$(cpu_ticks "$gw_pid"); pg0=$(pg_ticks)
  out=$(BENCH_RUN="$$-$run" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s bench/checkout.lua "http://$gw")
  ms1=$(cpu_ticks "$ms_pid"); gw1=$(cpu_ticks "$gw_pid"); pg1=$(pg_ticks)
  read -r checkouts failures seconds < <(awk '/^checkouts/ {print $2, $4, $6}' <<< "$out")
  grep '^a failure' <<< "$out" | head -n 2 || true
  ours=$(python3 -c "print(f'{$checkouts / $seconds:.1f}')")
  cpu="CPU per checkout: payment-ms $(us_each "$ms0" "$ms1" "$checkouts") µs, gateway $(us_each "$gw0" "$gw1" "$checkouts") µs, PostgreSQL $(us_each "$pg0" "$pg1" "$checkouts") µs"
  [ -n "${STACK_ONLY:-}" ] && { echo "run $run: stack $ours checkouts/s (failures $failures); $cpu"; continue; }
  # pgbench's backends exit with it, taking their counters along: what PostgreSQL spent is the
  # machine's busy time over the run less pgbench's own.
  busy0=$(busy_ticks)
  TIMEFORMAT='%U %S'
  { time pgbench -n -c "$CONNECTIONS" -j "$THREADS" -T "$DURATION" -f "$work/checkout.sql" "$db_url" \
      > "$work/pgbench.out" 2> "$work/pgbench.err"; } 2> "$work/pgbench.time"
  busy1=$(busy_ticks)
  bench_out=$(cat "$work/pgbench.out")
  pgbench_ticks=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($1 + $2) * hz}' "$work/pgbench.time")
  tps=$(awk '/^tps/ {print $3}' <<< "$bench_out")
  done_tx=$(awk '/^number of transactions actually processed/ {print $NF}' <<< "$bench_out")
  [ -n "$tps" ] || { echo "pgbench failed:" >&2; tail -5 "$work/pgbench.err" >&2; exit 1; }
  ratio=$(python3 -c "print(f'{$ours / $tps:.2f}')")
  printf 'run %d: stack %8s checkouts/s (failures %s)   pgbench %8.1f tps   ratio %s\n' \
    "$run" "$ours" "$failures" "$tps" "$ratio"
  echo "       stack: $cpu; pgbench: PostgreSQL $(us_each "$pgbench_ticks" "$((busy1 - busy0))" "${done_tx:-1}") µs per transaction"
done
