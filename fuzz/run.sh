#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECS seconds each and prints how many
# executions each ran clean. Usage: fuzz/run.sh [SECS] [TARGET...]   (default 60 s, all)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The machine's toolchain is stable, so
# nightly-only flags are allowed with RUSTC_BOOTSTRAP=1; targets are built without a
# sanitizer (the code under test is safe Rust; libFuzzer still guides by coverage).
# Corpora grow in fuzz/corpus/TARGET (not committed); fuzz/seeds/TARGET seeds them.
# A crash is saved under fuzz/artifacts/TARGET and the script fails: turn it into a
# regression test next to the code it broke.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
SECS=${1:-60}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  mapfile -t TARGETS < <(cargo fuzz list)
fi
cargo fuzz build --sanitizer none
status=0
for target in "${TARGETS[@]}"; do
  mkdir -p "corpus/$target"
  seeds=()
  if [ -d "seeds/$target" ]; then seeds=("seeds/$target"); fi
  log=$(mktemp)
  if cargo fuzz run --sanitizer none "$target" "corpus/$target" "${seeds[@]}" -- \
    -max_total_time="$SECS" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 | cut -d' ' -f2)
    echo "$target: ${runs:-?} executions in ${SECS}s, clean"
  else
    echo "$target: FAILED (see $log)"
    grep -E 'panicked|ERROR|Test unit written' "$log" | head -5
    status=1
  fi
done
exit $status
