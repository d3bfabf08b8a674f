#!/usr/bin/env bash
# Runs the whole test suite: set-up, layering check, build, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

# chain-core and p2p-proto must stay free of I/O runtimes and networking.
for crate in chain-core p2p-proto; do
  if cargo tree -q -p "$crate" -e normal --prefix none | grep -Eq '^(tokio|rocksdb|librocksdb-sys|libp2p[a-z0-9-]*) '; then
    echo "layering: $crate depends on an I/O or networking crate:" >&2
    cargo tree -q -p "$crate" -e normal --prefix none | grep -E '^(tokio|rocksdb|librocksdb-sys|libp2p)' >&2
    exit 1
  fi
done
for crate in chain-store wallet chain-node cli-support node-api; do
  if cargo tree -q -p "$crate" -e normal --prefix none | grep -Eq '^libp2p'; then
    echo "layering: $crate depends on libp2p" >&2
    exit 1
  fi
done

# The HTTP API speaks the chain's typed API, not the wire protocol.
if cargo tree -q -p node-api -e normal --depth 1 --prefix none | grep -Eq '^p2p-proto '; then
  echo "layering: node-api depends on p2p-proto" >&2
  exit 1
fi

# The engine does not know HTTP: only node-api does.
if cargo tree -q -p chain-node -e normal --prefix none | grep -Eq '^(axum|hyper) '; then
  echo "layering: chain-node depends on an HTTP server" >&2
  exit 1
fi

cargo fmt --all -- --check

# One build of RocksDB serves every command below. The binaries are built
# first, as scripts/demo.sh builds them; the lints and the test build must
# then reuse that build of librocksdb-sys (its build script compiles RocksDB's
# C++, 20 minutes on 2 cores), not compile it again under another profile.
json="$(mktemp -d)"
trap 'rm -rf "$json"' EXIT
# The directory the build of librocksdb-sys ran in, from cargo's JSON messages.
rocksdb_build_dir() {
  grep '"reason":"build-script-executed"' "$1" | grep '#librocksdb-sys@' \
    | grep -o '"out_dir":"[^"]*"' | head -n 1 | sed 's/^"out_dir":"//; s/"$//; s#/out$##'
}
check_one_rocksdb_build() {
  local step="$1" dir
  dir="$(rocksdb_build_dir "$json/$step.json")"
  if [ "$dir" != "$rocksdb_dir" ] || [ "$(stat -c %Y "$dir/output")" != "$rocksdb_stamp" ]; then
    echo "one build: $step compiled librocksdb-sys again (in ${dir:-?}, the binaries' build is in $rocksdb_dir)." >&2
    echo "  Some dependency is built with other features or another profile; see the comment" >&2
    echo "  on [profile.dev.package.\"*\"] in Cargo.toml." >&2
    exit 1
  fi
}

# The end-to-end tests run the real binaries, so they are built first too.
cargo build --workspace --bins --message-format json-render-diagnostics >"$json/build.json"
rocksdb_dir="$(rocksdb_build_dir "$json/build.json")"
if [ -z "$rocksdb_dir" ] || [ ! -f "$rocksdb_dir/output" ]; then
  echo "one build: cargo reported no build of librocksdb-sys" >&2
  exit 1
fi
rocksdb_stamp="$(stat -c %Y "$rocksdb_dir/output")"

cargo clippy --workspace --all-targets --message-format json-render-diagnostics -- -D warnings >"$json/clippy.json"
check_one_rocksdb_build clippy
cargo test --workspace --no-run --message-format json-render-diagnostics >"$json/test-build.json"
check_one_rocksdb_build test-build

echo "== running the tests (${SECONDS} s after scripts/test.sh started)"
cargo test --workspace "$@"
