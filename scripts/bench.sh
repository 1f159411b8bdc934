#!/usr/bin/env bash
# The performance benchmark (issue 5), one command: builds in release, runs the
# plugin micro-benchmark and the end-to-end scenarios against a real Redis,
# prints the table and writes bench-results/results.json.
#
#   scripts/bench.sh                       # 10 s per scenario, 64 producers
#   scripts/bench.sh --duration 5 --concurrency 32 --scenarios baseline,compose-template
#   scripts/bench.sh --repeat 3            # every scenario 3 times: median table + spread table
#
# Options are passed to the bench binary (tests/src/bin/bench/); `target/release/bench --help` lists them.
# Not part of the test suite. Everything runs on this machine, on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh

mkdir -p bench-results
log() { echo "bench.sh: $*" >&2; }

# Hardware counters (instructions and cycles per event) come from `perf stat`
# (Debian's linux-perf); without it the benchmark runs and leaves them out.
if ! command -v perf >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  log "installing perf (Debian's linux-perf) for the hardware counters"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo -n"; fi
  { $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq linux-perf; } >/dev/null 2>&1 ||
    log "could not install perf: no hardware counters in this run"
fi
# perf exits 0 when a counter is "<not supported>": look for a counted value.
if command -v perf >/dev/null 2>&1 &&
  ! perf stat -x , -e instructions -- true 2>&1 >/dev/null | grep -Eq '^[0-9]+,'; then
  log "perf cannot count here (no PMU in this VM, or kernel.perf_event_paranoid is" \
    "$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo '?'): run as root or lower it):" \
    "no hardware counters in this run"
fi

log "building (release)"
cargo build --release --locked -p gateway --bin gateway
cargo build --release --locked -p gateway-e2e --bin bench

log "plugin micro-benchmark (cargo bench -p gateway --bench plugin_invoke)"
cargo bench --locked -p gateway --bench plugin_invoke 2>bench-results/plugin_invoke.log | tee bench-results/plugin_invoke.txt

log "end-to-end scenarios"
export BENCH_DATE
BENCH_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
export BENCH_COMMAND="scripts/bench.sh $*"
target/release/bench \
  --gateway-bin target/release/gateway \
  --out bench-results/results.json \
  --plugin-bench bench-results/plugin_invoke.txt \
  "$@" | tee bench-results/table.md
