#!/usr/bin/env bash
# Gateway hop: the same authenticated GET of a payment
#   (a) directly on payment-ms (internal token and identity headers),
#   (b) through the gateway (the JWT checked on every request; verified once, then remembered
#       until it expires, as a client sends the same token with each request),
#   (b') the same with the memory of verified tokens off (JWT_CACHE_SIZE=0): every request's
#       token verified in full, as with a new token each time,
#   (c) through nginx proxy_pass to payment-ms (no auth),
# with wrk at a fixed concurrency; throughput and p50/p99 for each, and the gateway's added
# latency against nginx's. Everything on 127.0.0.1; stops what it started.
#
#   bench/gateway.sh                          # RUNS=3 DURATION=10 CONNECTIONS=32
#   RUNS=1 DURATION=2 bench/gateway.sh        # a quick check
#   PIN=1 bench/gateway.sh                    # the hop on a core of its own (see below)
#
# By default all four processes share the machine's cores, so the hop's CPU per request comes
# out of payment-ms's and wrk's: throughput measures the hop's cost. PIN=1 puts the hop
# (gateway or nginx) on core 1 and wrk and payment-ms on core 0, as when the gateway runs on a
# machine or CPU allotment of its own: throughput and latency then measure what a client sees.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
load_cpu=()
hop_cpu=()
if [ "${PIN:-0}" = 1 ]; then
  load_cpu=(taskset -c 0)
  hop_cpu=(taskset -c 1)
fi

need=()
command -v wrk > /dev/null || need+=(wrk)
command -v nginx > /dev/null || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" > /dev/null
fi
source bench/lib.sh
build_bins
# GATEWAY_BIN compares another build of the gateway (e.g. an allocator experiment).
gateway_bin=${GATEWAY_BIN:-$bin/gateway}

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

secret=$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n')
internal="bench-internal-$secret"
ms=127.0.0.1:28081
gw=127.0.0.1:28080
gw_verify=127.0.0.1:28083
ngx=127.0.0.1:28082
export RUST_LOG=warn APP_PROFILE=dev JWT_HS256_SECRET="$secret" INTERNAL_TOKEN="$internal" \
  RATE_LIMIT_USER_PER_SECOND=0 RATE_LIMIT_IP_PER_SECOND=0 WEBHOOK_ENABLED=false

DATABASE_URL="sqlite://$work/bench.db?mode=rwc" PAYMENT_MS_ADDR=$ms PUBLIC_BASE_URL="http://$gw" \
  "${load_cpu[@]}" "$bin/payment-ms" > "$work/ms.log" 2>&1 &
ms_pid=$!
pids+=($ms_pid)
GATEWAY_ADDR=$gw PAYMENT_MS_URL="http://$ms" "${hop_cpu[@]}" "$gateway_bin" > "$work/gw.log" 2>&1 &
gw_pid=$!
pids+=($gw_pid)
JWT_CACHE_SIZE=0 GATEWAY_ADDR=$gw_verify PAYMENT_MS_URL="http://$ms" "${hop_cpu[@]}" "$gateway_bin" > "$work/gw-verify.log" 2>&1 &
gw_verify_pid=$!
pids+=($gw_verify_pid)
for addr in $gw $gw_verify; do
  for _ in $(seq 1 200); do curl -sf "http://$addr/readyz" > /dev/null && break; sleep 0.05; done
done

user=$("$gateway_bin" token --sub bench_user --ttl 1h)
service=$("$gateway_bin" token --sub bench_shop --roles service --ttl 1h)
order=$(curl -sf -X POST "http://$gw/api/v1/orders" -H "Authorization: Bearer $service" \
  -H 'content-type: application/json' \
  -d '{"user_id":"bench_user","currency":"usd","items":[{"sku":"a","name":"A","quantity":1,"unit_price":1000}]}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
payment=$(curl -sf -X POST "http://$gw/api/v1/orders/$order/checkout" -H "Authorization: Bearer $user" \
  -H 'content-type: application/json' \
  -d '{"success_url":"https://shop.example/ok","cancel_url":"https://shop.example/no"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $work/nginx/logs/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp;
  proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp;
  uwsgi_temp_path $work/nginx/tmp;
  scgi_temp_path $work/nginx/tmp;
  upstream payment_ms { server $ms; keepalive 64; }
  server {
    listen $ngx;
    location /api/v1/ {
      proxy_pass http://payment_ms/internal/v1/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header x-internal-token "$internal";
      proxy_set_header x-user-id bench_user;
    }
  }
}
CONF
"${hop_cpu[@]}" nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
ngx_pid=$!
pids+=($ngx_pid)
sleep 0.5
ngx_pids="$ngx_pid $(pgrep -P "$ngx_pid" | xargs)"

# wrk's --latency output: requests/s and the 50% / 99% lines.
# $3: the processes whose CPU per request is printed (the hop's, or payment-ms's for direct).
measure() {
  local name=$1 url=$2 procs=$3
  shift 3
  local out before after ms_before ms_after
  before=$(cpu_ticks $procs)
  ms_before=$(cpu_ticks "$ms_pid")
  out=$("${load_cpu[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url")
  after=$(cpu_ticks $procs)
  ms_after=$(cpu_ticks "$ms_pid")
  local rps p50 p99 errors requests cpu ms_cpu
  rps=$(awk '/^Requests\/sec/ {print $2}' <<< "$out")
  p50=$(awk '$1 == "50%" {print $2}' <<< "$out")
  p99=$(awk '$1 == "99%" {print $2}' <<< "$out")
  requests=$(awk '/requests in/ {print $1}' <<< "$out")
  cpu=$(us_each "$before" "$after" "$requests")
  ms_cpu=$(us_each "$ms_before" "$ms_after" "$requests")
  errors=$(grep -cE 'Non-2xx|Socket errors' <<< "$out" || true)
  printf '%-10s %10s req/s   p50 %8s   p99 %8s   CPU %4s µs/request (payment-ms %4s)%s\n' "$name" "$rps" "$p50" "$p99" "$cpu" "$ms_cpu" \
    "$([ "$errors" -gt 0 ] && echo "   ERRORS: $(grep -E 'Non-2xx|Socket errors' <<< "$out" | tr -s ' ')")"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s$([ ${#hop_cpu[@]} -gt 0 ] && echo '; the hop on core 1, wrk and payment-ms on core 0')"
for run in $(seq 1 "$RUNS"); do
  echo "== run $run"
  # CPU per request: payment-ms's for direct; the hop's own for the gateway and nginx.
  measure direct "http://$ms/internal/v1/payments/$payment" "$ms_pid" \
    -H "x-internal-token: $internal" -H "x-user-id: bench_user"
  measure gateway "http://$gw/api/v1/payments/$payment" "$gw_pid" -H "Authorization: Bearer $user"
  measure gw-verify "http://$gw_verify/api/v1/payments/$payment" "$gw_verify_pid" -H "Authorization: Bearer $user"
  measure nginx "http://$ngx/api/v1/payments/$payment" "$ngx_pids"
done
