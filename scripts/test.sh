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

# The engine does not know HTTP: only node-api does.
if cargo tree -q -p chain-node -e normal --prefix none | grep -Eq '^(axum|hyper) '; then
  echo "layering: chain-node depends on an HTTP server" >&2
  exit 1
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

# The end-to-end tests run the real binaries, so build them first.
cargo build --workspace --bins
cargo test --workspace "$@"
