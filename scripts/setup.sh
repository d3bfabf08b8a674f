#!/usr/bin/env bash
# Installs what building needs beyond the Rust toolchain: libclang for the
# RocksDB bindings. Sourced by the other scripts; safe to run again.
set -euo pipefail

have_libclang() {
  [ -n "${LIBCLANG_PATH:-}" ] && return 0
  compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null || compgen -G "/usr/lib/*-linux-gnu/libclang*.so*" >/dev/null
}

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not installed: install Rust 1.95 with rustup first (https://rustup.rs)" >&2
  exit 1
fi

if ! have_libclang; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing libclang-dev (needed to build RocksDB)..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null
  else
    echo "RocksDB's build needs libclang. Install it and run this again:" >&2
    echo "    sudo apt-get install -y libclang-dev" >&2
    exit 1
  fi
fi

# One shared target directory keeps rebuilds short; respect one already set.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/chain/target}"
