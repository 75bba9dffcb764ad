#!/usr/bin/env bash
# Browser light-client benchmarks (tests/browser_bench.rs) against live native nodes:
#   1. builds the native node (target/debug/headway; HEADWAY_NATIVE_PROFILE=release for
#      target/release/headway),
#   2. starts scripts/browser-fixture.sh in a temp dir with BENCH_VALIDATORS validators and
#      BENCH_BLOCKS blocks (hand-over every 100),
#   3. compiles the bench (release profile: opt-level 3) with the fixture in
#      HEADWAY_BROWSER_FIXTURE and HEADWAY_BROWSER_BENCH=1 (compile time; without the latter
#      the test skips itself, as in scripts/test.sh), waits for a quiet machine (15 s under
#      0.25 busy cores, at most BENCH_QUIET_MAX_S=300 s; 0 skips) and runs it in headless
#      Chromium while logging other processes' CPU,
#   4. stops the nodes (also on failure or Ctrl-C) and prints the results (`BENCH` lines).
#
#   scripts/bench-browser.sh            # 100 validators, 2000 blocks
#   BENCH_BLOCKS=1100 scripts/bench-browser.sh
#
# Needs what .ci/run installs: the wasm32 target, wasm-bindgen-cli matching Cargo.lock,
# chromium and chromedriver.
set -euo pipefail
cd "$(dirname "$0")/.."

validators=${BENCH_VALIDATORS:-100}
blocks=${BENCH_BLOCKS:-2000}
profile=${HEADWAY_NATIVE_PROFILE:-debug}

if [ "$profile" = release ]; then
  cargo build --release --bin headway
else
  cargo build --bin headway
fi
export HEADWAY_BIN="target/$profile/headway"

dir=$(mktemp -d -t headway-bench-browser.XXXXXX)
log="$dir/bench.log"
sampler=
cleanup() {
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; fi
  scripts/browser-fixture.sh stop "$dir" || true
  if [ -n "${BENCH_KEEP_DIR:-}" ]; then
    echo "kept $dir" >&2
  else
    rm -rf "$dir"
  fi
}
trap cleanup EXIT INT TERM

echo "==> fixture: $validators validators, $blocks blocks, hand-over every 100 ($HEADWAY_BIN)"
start=$(date +%s)
scripts/browser-fixture.sh start "$dir" "$validators" "$blocks" >/dev/null
echo "    ready in $(($(date +%s) - start)) s"

export HEADWAY_BROWSER_FIXTURE HEADWAY_BROWSER_BENCH=1
HEADWAY_BROWSER_FIXTURE=$(cat "$dir/fixture.json")
export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-900}"

# Compile first (the fixture is baked in at compile time), so the machine's load can be
# sampled during the measured run alone.
cargo test --release --target wasm32-unknown-unknown --test browser_bench --no-run

# Wait (at most BENCH_QUIET_MAX_S, default 300 s) for 15 s with under 0.25 busy cores on the
# whole machine, so the run does not start while other work is running. BENCH_QUIET_MAX_S=0
# skips the wait.
busy_cores() { # over $1 seconds, from /proc/stat
  local a b
  a=($(head -1 /proc/stat)); sleep "$1"; b=($(head -1 /proc/stat))
  local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  echo "$(nproc) $idle $total" | awk '{ printf "%.2f", $1 * ($3 - $2) / ($3 ? $3 : 1) }'
}
quiet_max=${BENCH_QUIET_MAX_S:-300}
waited=0
while [ "$quiet_max" -gt 0 ]; do
  busy=$(busy_cores 15)
  waited=$((waited + 15))
  echo "    busy cores over the last 15 s: $busy"
  if awk -v b="$busy" 'BEGIN { exit !(b < 0.25) }'; then break; fi
  if [ "$waited" -ge "$quiet_max" ]; then
    echo "    the machine did not go quiet within $quiet_max s: running anyway" >&2
    break
  fi
done

# Other load: every 2 s, the processes above 10% of a core that are not this run's.
sample_load() {
  while :; do
    top -b -n1 -w 200 | awk -v t="$(date +%T)" 'NR > 7 && $9 > 10 { print t, $9, $12 }' |
      grep -Ev ' (chrome|chromium|chromedriver|headway|wasm-bindgen-te|top|awk)' || true
    sleep 2
  done
}
sample_load >"$dir/load.log" 2>/dev/null &
sampler=$!
echo "==> $(date -u '+%F %T UTC'); uptime:$(uptime)"
echo "==> cargo test --release --target wasm32-unknown-unknown --test browser_bench -- --nocapture"
status=0
cargo test --release --target wasm32-unknown-unknown --test browser_bench -- --nocapture \
  2>&1 | tee "$log" || status=$?
kill "$sampler" 2>/dev/null || true
echo "==> $(date -u '+%F %T UTC'); uptime:$(uptime)"

echo
echo "==> results"
grep -o 'BENCH .*' "$log" || true
echo "other processes above 10% of a core during the run (time, %CPU, command):"
if [ -s "$dir/load.log" ]; then cat "$dir/load.log"; else echo "  none seen"; fi
exit "$status"
