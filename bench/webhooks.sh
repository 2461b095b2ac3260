#!/usr/bin/env bash
# Webhook delivery benchmark: deliveries per second from a backlog, and commit-to-delivery
# latency at a fixed event rate, from a real payment-ms dispatcher to a minimal local receiver.
# Runs on SQLite, and on PostgreSQL when one answers at BENCH_POSTGRES_URL (a server where it
# may create and drop a database). Everything runs on 127.0.0.1 and stops by itself.
#
#   bench/webhooks.sh                 # RUNS=3 EVENTS=20000 RATE=200 DURATION=10
#   RUNS=1 EVENTS=500 DURATION=2 bench/webhooks.sh   # a quick check
#   BLACK_HOLE=1 bench/webhooks.sh    # beside a second partner that never answers: the
#                                     # healthy partner's figures with a black hole next to it
#   WEBHOOK_PARTNER_CONCURRENCY=8 bench/webhooks.sh   # WEBHOOK_* settings reach the worker
#   BENCH_SLOWEST=1 bench/webhooks.sh # also print the 25 slowest commit-to-delivery times, with
#                                     # when they were committed: a stall shows as a run of them
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
EVENTS=${EVENTS:-20000}
RATE=${RATE:-200}
DURATION=${DURATION:-10}
BENCH_POSTGRES_URL=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# The per-attempt info lines cost more than the delivery itself at these rates.
export RUST_LOG=${RUST_LOG:-warn}

# BENCH_PROFILE=debug builds faster (CI keeps the script working that way); figures need release.
profile=${BENCH_PROFILE:-release}

echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
if [ "$profile" = release ]; then
  cargo build --release --quiet -p payment-ms --example webhook_bench
  bin=target/release/examples/webhook_bench
else
  cargo build --quiet -p payment-ms --example webhook_bench
  bin=target/debug/examples/webhook_bench
fi
args=(--events "$EVENTS" --rate "$RATE" --seconds "$DURATION")
if [ "${BLACK_HOLE:-0}" = 1 ]; then
  args+=(--black-hole)
fi

for run in $(seq 1 "$RUNS"); do
  echo "== sqlite, run $run"
  "$bin" "${args[@]}"
done

if command -v psql > /dev/null && psql "$BENCH_POSTGRES_URL" -qAtc 'select 1' > /dev/null 2>&1; then
  db="webhook_bench_$$"
  url="${BENCH_POSTGRES_URL%/*}/$db"
  for run in $(seq 1 "$RUNS"); do
    psql "$BENCH_POSTGRES_URL" -qc "CREATE DATABASE $db"
    echo "== postgres, run $run"
    "$bin" "${args[@]}" --database-url "$url" || true
    psql "$BENCH_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  done
else
  echo "== postgres: not reachable at $BENCH_POSTGRES_URL, skipped"
fi
