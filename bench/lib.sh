# Sourced by the bench scripts.

# Builds both binaries in BENCH_PROFILE (`release` by default, as figures need; `debug` builds
# much faster, which is how CI keeps the scripts working) and sets $bin to their folder.
build_bins() {
  if [ "${BENCH_PROFILE:-release}" = release ]; then
    cargo build --release --quiet -p gateway -p payment-ms
    bin=target/release
  else
    cargo build --quiet -p gateway -p payment-ms
    bin=target/debug
  fi
}

# CPU time of processes, to tell what one request costs each: unlike throughput, it hardly
# moves with the machine's other load. `cpu_ticks PID...`: their user and system time so far,
# in clock ticks (a process that has exited counts nothing).
cpu_ticks() {
  for pid in "$@"; do cat "/proc/$pid/stat" 2> /dev/null; done | awk '{t += $14 + $15} END {print t + 0}'
}
# `us_each BEFORE AFTER COUNT`: the ticks between two readings, in µs per one of COUNT.
us_each() {
  python3 -c "print(f'{($2 - $1) / $(getconf CLK_TCK) / max($3, 1) * 1e6:.0f}')"
}
