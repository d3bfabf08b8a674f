#!/usr/bin/env bash
# The tutorial's single-node flow: two wallets, a chain, a payment, balances.
# Runs in a fresh temporary directory, so it never touches ./tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build -q --bins
bin="$CARGO_TARGET_DIR/debug"
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
export NODE_ID=3000
run() { echo "\$ $*"; "$bin/$1" --data-dir "$data" "${@:2}"; echo; }
run wallet-cli createwallet -alias w1
run wallet-cli createwallet -alias w2
run wallet-cli listaddresses
run node createblockchain -address w1
run wallet-cli send -from w1 -to w2 -amount 10 -mint
run wallet-cli getbalance -address w1
run wallet-cli getbalance -address w2
run node printchain
run node checkdb
