# Sourced by the bench scripts. Builds both binaries in BENCH_PROFILE (`release` by default, as
# figures need; `debug` builds much faster, which is how CI keeps the scripts working) and sets
# $bin to their folder.
build_bins() {
  if [ "${BENCH_PROFILE:-release}" = release ]; then
    cargo build --release --quiet -p gateway -p payment-ms
    bin=target/release
  else
    cargo build --quiet -p gateway -p payment-ms
    bin=target/debug
  fi
}
