#!/usr/bin/env bash
# Bill-run benchmark on PostgreSQL (BENCH_POSTGRES_URL): SUBSCRIPTIONS subscriptions whose
# period ends at the same moment, each with the mock provider's saved payment method; the
# clock runs from payment-ms's start until every one has a paid invoice for its new period
# (renewed, finalized and numbered, its order charged, paid). Then the billing figures'
# latency over that data. Results in docs/BENCHMARKS.md.
#
#   bench/billing.sh                                   # SUBSCRIPTIONS=100000 RUNS=1 CONCURRENCY=8
#   SUBSCRIPTIONS=2000 bench/billing.sh                # a quick check
set -euo pipefail
cd "$(dirname "$0")/.."

SUBSCRIPTIONS=${SUBSCRIPTIONS:-100000}
RUNS=${RUNS:-1}
CONCURRENCY=${CONCURRENCY:-8}
BENCH_POSTGRES_URL=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export RUST_LOG=${RUST_LOG:-warn}
profile=${BENCH_PROFILE:-release}

echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(psql --version)"
if [ -n "${BENCH_BIN:-}" ]; then
  bin=$BENCH_BIN # a binary built otherwise (e.g. release without LTO, for a quicker build)
elif [ "$profile" = release ]; then
  cargo build --release --quiet -p payment-ms --example billing_bench
  bin=target/release/examples/billing_bench
else
  cargo build --quiet -p payment-ms --example billing_bench
  bin=target/debug/examples/billing_bench
fi
if ! psql "$BENCH_POSTGRES_URL" -qAtc 'select 1' > /dev/null 2>&1; then
  echo "PostgreSQL does not answer at $BENCH_POSTGRES_URL" >&2
  exit 1
fi
db="billing_bench_$$"
url="${BENCH_POSTGRES_URL%/*}/$db${BENCH_URL_PARAMS:-}"
trap 'psql "$BENCH_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" > /dev/null 2>&1 || true' EXIT
for run in $(seq 1 "$RUNS"); do
  psql "$BENCH_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  psql "$BENCH_POSTGRES_URL" -qc "CREATE DATABASE $db"
  echo "== run $run"
  "$bin" --subscriptions "$SUBSCRIPTIONS" --concurrency "$CONCURRENCY" --database-url "$url"
done
