#!/usr/bin/env bash
# Runs every fuzz target for a number of executions (default 10 million)
# and prints how many each completed. Needs the nightly toolchain and
# cargo-fuzz (`cargo install cargo-fuzz`).
#   scripts/fuzz.sh [RUNS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
runs="${1:-10000000}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
# A target directory of its own: these builds use nightly and sanitizers.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/chain/fuzz-target}"
cargo +nightly fuzz build -O
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log="$(mktemp)"
  # -timeout: an input that takes over 10 s is a hang; -rss_limit_mb: memory cap.
  if ! cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
      -runs="$runs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz target $t failed" >&2
    exit 1
  fi
  done_line="$(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)"
  echo "$t: $done_line"
  rm -f "$log"
done
