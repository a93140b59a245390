#!/usr/bin/env bash
# Long offline fuzzing (docs/fuzzing.md): every target in turn, or those
# named, for FUZZ_RUNS executions (10,000,000) each, as one libFuzzer job at
# the lowest priority, so it can run in the background on a shared machine.
# Builds without a sanitizer (about twice the executions a second; the
# readers are safe Rust, and a panic, stack overflow, timeout or running
# out of memory is caught all the same) into fuzz/target/long, apart from
# the CI build. Keeps the corpus between runs (seeding it when missing),
# logs to fuzz/logs/long-TARGET.log and prints each target's executions,
# time and crash, if any.
#
#   fuzz/long.sh                 # every target
#   FUZZ_RUNS=1000000 fuzz/long.sh edn auto
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${FUZZ_RUNS:-10000000}"
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=(jsonl edn jepsen_log porcupine_kv elle_json auto); fi
BUILD=(--codegen-units 16 --sanitizer none --target-dir target/long)

if [ ! -d fuzz/corpus ]; then
  extra=()
  if [ -n "${FAULTLINE_BENCHDATA:-}" ] && [ -d "$FAULTLINE_BENCHDATA/porcupine" ]; then
    extra+=("$FAULTLINE_BENCHDATA/porcupine")
  fi
  nice -n 19 cargo run --locked --profile test -q -p faultline-checkers --example fuzz_seeds -- \
    fuzz/corpus "${extra[@]}"
fi
(cd fuzz && nice -n 19 cargo +nightly fuzz build "${BUILD[@]}")

dict_for() {
  case "$1" in
    jsonl | elle_json) echo dict/json.dict ;;
    auto) echo dict/all.dict ;;
    *) echo dict/edn.dict ;;
  esac
}

mkdir -p fuzz/logs
for t in "${targets[@]}"; do
  started=$(date +%s)
  log="fuzz/logs/long-$t.log"
  # With -jobs=1 libFuzzer runs the fuzzing in a child process whose output
  # goes to fuzz-0.log in the working directory; it becomes the log.
  if (cd fuzz && nice -n 19 cargo +nightly fuzz run "${BUILD[@]}" "$t" -- \
    -runs="$RUNS" -jobs=1 -max_len=4096 -timeout=20 -dict="$(dict_for "$t")" \
    -print_final_stats=1) >"$log.outer" 2>&1; then
    result="no crash"
  else
    result="CRASHED (see $log)"
  fi
  [ -f fuzz/fuzz-0.log ] && mv fuzz/fuzz-0.log "$log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" 2>/dev/null | tail -1)
  printf 'fuzz/long.sh: %-13s %10s executions in %6s s, %s\n' \
    "$t" "${execs:-?}" "$(($(date +%s) - started))" "$result"
done
