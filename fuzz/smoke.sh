#!/usr/bin/env bash
# The CI fuzz stage (see docs/fuzzing.md): builds the history-reader fuzz
# targets, seeds a fresh corpus from the repository's histories (and the
# small Porcupine histories when FAULTLINE_BENCHDATA is set), runs every
# target for FUZZ_SECONDS (30), two at a time on two cores, and fails on
# any crash: a panic, a failed assertion, a stack overflow, a timeout or
# running out of memory. Prints the executions of each target.
#
# Needs a nightly toolchain and cargo-fuzz (`.ci/run` installs cargo-fuzz).
#
# `fuzz/smoke.sh --build-only` only builds the targets, with the same flags,
# so that `.ci/run` can build them at low priority while the tests run and
# the later smoke run finds them built.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${FUZZ_SECONDS:-30}"
PARALLEL="${FUZZ_PARALLEL:-2}"
TARGETS=(jsonl edn jepsen_log porcupine_kv elle_json auto)
# Build flags: `cargo fuzz run` rebuilds unless it gets the same ones.
# Sixteen codegen units build the large checkers crate on both cores.
BUILD=(--codegen-units 16)

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz/smoke.sh: no nightly toolchain (rustup toolchain install nightly); cargo-fuzz needs one" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz/smoke.sh: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)" >&2
  exit 1
fi
started=$(date +%s)

if [ "${1:-}" = "--build-only" ]; then
  (cd fuzz && cargo +nightly fuzz build "${BUILD[@]}")
  echo "fuzz/smoke.sh: built in $(($(date +%s) - started)) s"
  exit 0
fi

# fuzz/Cargo.lock must be complete and current, as Cargo.lock is for the tests.
cargo +nightly metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null

# A fresh corpus from the histories in the repository.
rm -rf fuzz/corpus
extra=()
if [ -n "${FAULTLINE_BENCHDATA:-}" ] && [ -d "$FAULTLINE_BENCHDATA/porcupine" ]; then
  extra+=("$FAULTLINE_BENCHDATA/porcupine")
fi
# Built for the whole workspace, as `cargo test --workspace` builds it: with
# `-p faultline-checkers` alone, cargo unifies features differently and
# rebuilds the checkers and their dependencies (about two minutes in CI);
# after the test stage this build is a no-op.
cargo build --locked --profile test -q --workspace --examples
"${CARGO_TARGET_DIR:-target}/debug/examples/fuzz_seeds" fuzz/corpus "${extra[@]}"

(cd fuzz && cargo +nightly fuzz build "${BUILD[@]}")
built=$(date +%s)
echo "fuzz/smoke.sh: seeded and built in $((built - started)) s"

dict_for() {
  case "$1" in
    jsonl | elle_json) echo dict/json.dict ;;
    auto) echo dict/all.dict ;;
    *) echo dict/edn.dict ;;
  esac
}

mkdir -p fuzz/logs
run_target() {
  local t="$1"
  (cd fuzz && cargo +nightly fuzz run "${BUILD[@]}" "$t" -- \
    -max_total_time="$SECONDS_EACH" -max_len=4096 -timeout=20 \
    -dict="$(dict_for "$t")" -print_final_stats=1) >"fuzz/logs/$t.log" 2>&1
}

# Two targets at a time; each job's exit status is kept by name.
declare -A status=()
pending=("${TARGETS[@]}")
while [ "${#pending[@]}" -gt 0 ]; do
  batch=("${pending[@]:0:$PARALLEL}")
  pending=("${pending[@]:$PARALLEL}")
  declare -A pids=()
  for t in "${batch[@]}"; do
    run_target "$t" &
    pids[$t]=$!
  done
  for t in "${batch[@]}"; do
    if wait "${pids[$t]}"; then status[$t]=0; else status[$t]=$?; fi
  done
  unset pids
done

failed=0
for t in "${TARGETS[@]}"; do
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "fuzz/logs/$t.log" | tail -1)
  if [ "${status[$t]}" -eq 0 ]; then
    printf 'fuzz/smoke.sh: %-13s %10s executions in %s s, no crash\n' "$t" "${execs:-?}" "$SECONDS_EACH"
  else
    failed=1
    printf 'fuzz/smoke.sh: %-13s CRASHED (exit %s); log fuzz/logs/%s.log:\n' "$t" "${status[$t]}" "$t"
    # The crash without libFuzzer's progress lines and its dump of the
    # input's bytes (the artifact file holds them).
    grep -v -e '^#[0-9]' -e '^	\[' "fuzz/logs/$t.log" | tail -60
  fi
done
echo "fuzz/smoke.sh: done in $(($(date +%s) - started)) s"
exit "$failed"
