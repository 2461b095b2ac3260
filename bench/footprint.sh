#!/usr/bin/env bash
# Memory and start-up of each binary (release build, SQLite): time from launch to a 200 from
# /readyz (payment-ms on a new database file, migrations included; the gateway with payment-ms
# already up), RSS when idle, and the highest RSS under a wrk load. Loopback only.
#
#   bench/footprint.sh                 # RUNS=3 DURATION=10 CONNECTIONS=64
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}

command -v wrk > /dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk > /dev/null; }
source bench/lib.sh
build_bins

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

secret=$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n')
export RUST_LOG=warn APP_PROFILE=dev JWT_HS256_SECRET="$secret" INTERNAL_TOKEN="i-$secret" \
  RATE_LIMIT_USER_PER_SECOND=0 RATE_LIMIT_IP_PER_SECOND=0 WEBHOOK_ENABLED=false

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
wait_ready() {
  local url=$1 start=$2
  until curl -sf -o /dev/null "$url"; do :; done
  echo $(( $(now_ms) - start ))
}
# The highest RSS of $1 while wrk loads $2 (extra wrk arguments follow).
peak_under_load() {
  local pid=$1 url=$2
  shift 2
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "$@" "$url" > /dev/null &
  local load=$! peak=0 rss
  while kill -0 "$load" 2> /dev/null; do
    rss=$(rss_kib "$pid"); [ "$rss" -gt "$peak" ] && peak=$rss
    sleep 0.1
  done
  echo "$peak"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for run in $(seq 1 "$RUNS"); do
  ms=127.0.0.1:29081
  gw=127.0.0.1:29080
  db="$work/run$run.db"
  start=$(now_ms)
  DATABASE_URL="sqlite://$db?mode=rwc" PAYMENT_MS_ADDR=$ms "$bin/payment-ms" > "$work/ms$run.log" 2>&1 &
  ms_pid=$!
  pids+=("$ms_pid")
  ms_ready=$(wait_ready "http://$ms/readyz" "$start")
  start=$(now_ms)
  GATEWAY_ADDR=$gw PAYMENT_MS_URL="http://$ms" "$bin/gateway" > "$work/gw$run.log" 2>&1 &
  gw_pid=$!
  pids+=("$gw_pid")
  gw_ready=$(wait_ready "http://$gw/readyz" "$start")
  sleep 1
  ms_idle=$(rss_kib "$ms_pid")
  gw_idle=$(rss_kib "$gw_pid")

  user=$("$bin/gateway" token --sub u --ttl 1h)
  service=$("$bin/gateway" token --sub s --roles service --ttl 1h)
  order=$(curl -sf -X POST "http://$gw/api/v1/orders" -H "Authorization: Bearer $service" -H 'content-type: application/json' \
    -d '{"user_id":"u","currency":"usd","items":[{"sku":"a","name":"A","quantity":1,"unit_price":1000}]}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  payment=$(curl -sf -X POST "http://$gw/api/v1/orders/$order/checkout" -H "Authorization: Bearer $user" -H 'content-type: application/json' \
    -d '{"success_url":"https://s.example/ok","cancel_url":"https://s.example/no"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  ms_peak=$(peak_under_load "$ms_pid" "http://$ms/internal/v1/payments/$payment" -H "x-internal-token: i-$secret" -H "x-user-id: u")
  gw_peak=$(peak_under_load "$gw_pid" "http://$gw/api/v1/payments/$payment" -H "Authorization: Bearer $user")

  printf 'run %s  payment-ms: ready %4s ms, idle %6s KiB, under load %6s KiB   gateway: ready %4s ms, idle %6s KiB, under load %6s KiB\n' \
    "$run" "$ms_ready" "$ms_idle" "$ms_peak" "$gw_ready" "$gw_idle" "$gw_peak"
  kill "$gw_pid" "$ms_pid"
  wait "$gw_pid" "$ms_pid" 2> /dev/null || true
done
