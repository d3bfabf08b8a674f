#!/usr/bin/env bash
# Installs what building needs beyond the Rust toolchain: libclang for the
# RocksDB bindings. Sourced by the other scripts; safe to run again.
set -euo pipefail

setup_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Looks where clang-sys looks, for the names it accepts (see the script).
have_libclang() {
  "$setup_dir/find-libclang.sh" >/dev/null
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
    if ! have_libclang; then
      echo "libclang-dev is installed but no libclang.so was found; set LIBCLANG_PATH to the directory that holds it" >&2
      exit 1
    fi
  else
    echo "RocksDB's build needs libclang. Install it and run this again:" >&2
    echo "    sudo apt-get install -y libclang-dev" >&2
    exit 1
  fi
fi

# The HTTP API's tests drive a real browser (Debian's chromium) and check
# /metrics and the Prometheus configuration with promtool (Debian's
# prometheus package); the operator's tests verify the systemd unit with
# systemd-analyze (systemd) and render the manual pages with man (man-db).
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  missing+=(chromium)
fi
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v man >/dev/null 2>&1 || missing+=(man-db)
# The NAT tests build home routers in network namespaces (iproute2) that
# masquerade with nftables; curl reads the API of a node inside one.
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} (for the HTTP API's, the operator's and the NAT tests)..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "The HTTP API's, the operator's and the NAT tests need ${missing[*]}. Install them and run this again:" >&2
    echo "    sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# One shared target directory keeps rebuilds short; respect one already set.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/chain/target}"

# Builds the binaries with cargo's progress showing; says first when this is
# the long first build.
build_bins() {
  if [ ! -x "$CARGO_TARGET_DIR/debug/node" ] || [ ! -x "$CARGO_TARGET_DIR/debug/wallet-cli" ]; then
    echo "== first build: cargo compiles RocksDB (a C++ database) and libp2p from source."
    echo "   That takes about 20 minutes on 2 cores; later builds take a minute or two at most."
  fi
  cargo build --bins
}
