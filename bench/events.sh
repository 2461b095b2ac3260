#!/usr/bin/env bash
# Event bus benchmark against a real nats-server (NATS_URL, default 127.0.0.1:4222): the
# relay's throughput from a backlog (committed to acknowledged by JetStream, and recorded) as
# a ratio to a plain async-nats publisher of the same message size on the same server; its
# commit-to-ack latency at a fixed rate; and inbound handling through the consumer and the
# inbox. On SQLite, and on PostgreSQL when one answers at BENCH_POSTGRES_URL.
#
#   bench/events.sh                                  # RUNS=3 EVENTS=20000 INBOUND=5000 RATE=500 DURATION=10
#   RUNS=1 EVENTS=500 INBOUND=200 DURATION=1 bench/events.sh   # a quick check
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
EVENTS=${EVENTS:-20000}
INBOUND=${INBOUND:-5000}
RATE=${RATE:-500}
DURATION=${DURATION:-10}
NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
BENCH_POSTGRES_URL=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export RUST_LOG=${RUST_LOG:-warn}
profile=${BENCH_PROFILE:-release}

echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(nats-server --version 2>/dev/null || echo 'nats-server ?')"
if [ "$profile" = release ]; then
  cargo build --release --quiet -p payment-ms --example events_bench
  bin=target/release/examples/events_bench
else
  cargo build --quiet -p payment-ms --example events_bench
  bin=target/debug/examples/events_bench
fi
args=(--events "$EVENTS" --inbound "$INBOUND" --rate "$RATE" --seconds "$DURATION" --nats-url "$NATS_URL")

for run in $(seq 1 "$RUNS"); do
  echo "== sqlite, run $run"
  "$bin" "${args[@]}"
done

if command -v psql > /dev/null && psql "$BENCH_POSTGRES_URL" -qAtc 'select 1' > /dev/null 2>&1; then
  db="events_bench_$$"
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
