#!/usr/bin/env bash
# The tutorial from start to end, with no terminal juggling:
#   1. the single-node flow: two wallets, a chain, a payment, balances;
#   2. the three-node flow over libp2p on 127.0.0.1: node A (3000) holds the
#      chain, C (3002) mints for w3, B (3001) pays w1 twice through A;
#   3. every node at height 2, with the balances (w1 32, w2 8, w3 20) read
#      from every node;
#   4. every node stopped.
# Each command is printed as the tutorial writes it (`cargo run -p ...`) and
# run from the already built binary. Everything happens in a temporary
# directory that is removed at the end, and every node is stopped, even on
# Ctrl-C or an error. Exits non-zero if any step or balance is wrong.
#
# Environment: BASE_PORT (default 3000; the next free three ports are used
# if those are taken), DEMO_BIN_DIR (use binaries from there, skip the build).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${DEMO_BIN_DIR:-}" ]; then
  bin="$DEMO_BIN_DIR"
else
  source scripts/setup.sh
  bin="$CARGO_TARGET_DIR/debug"
  build_bins
fi

work="$(mktemp -d)"
pids=()
names=()
cleanup() {
  local rc=$?
  trap - INT TERM EXIT
  if [ "${#pids[@]}" -gt 0 ]; then
    echo
    echo "== stopping the nodes"
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for i in "${!pids[@]}"; do
      wait "${pids[$i]}" 2>/dev/null || true
      echo "stopped node ${names[$i]} (pid ${pids[$i]})"
    done
  fi
  if [ "$rc" != 0 ] && [ -d "$work" ]; then
    for log in "$work"/node-*.log; do
      [ -f "$log" ] || continue
      echo "--- last lines of $(basename "$log")" >&2
      tail -n 15 "$log" >&2
    done
  fi
  rm -rf "$work"
  echo "removed $work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$work"

fail() {
  echo "demo failed: $*" >&2
  exit 1
}

# Picks three consecutive ports nobody listens on, from BASE_PORT upward.
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
base="${BASE_PORT:-3000}"
for _ in $(seq 50); do
  if ! port_taken "$base" && ! port_taken $((base + 1)) && ! port_taken $((base + 2)); then
    break
  fi
  base=$((base + 10))
done
A=$base
B=$((base + 1))
C=$((base + 2))

show() { printf '\n$ %s\n' "$*"; }
# wallet-cli / node as the tutorial writes them; NODE_ID as a prefix when it
# is not the exported one.
cmd() {
  local id=$1 program=$2
  shift 2
  local prefix=""
  [ "$id" = "${NODE_ID:-}" ] || prefix="NODE_ID=$id "
  show "${prefix}cargo run -p $program -- $*"
  NODE_ID=$id "$bin/$program" "$@"
}
address_of() { # the address of an alias in node $1's wallet
  NODE_ID=$1 "$bin/wallet-cli" listaddresses --json |
    sed -nE "s/.*\"address\":\"([^\"]+)\",\"alias\":\"$2\".*/\1/p"
}
height_of() { # the best height in node $1's chain, or nothing
  NODE_ID=$1 "$bin/node" printchain --json 2>/dev/null | sed -nE 's/.*"height":([0-9]+),"tip".*/\1/p'
}
balance_of() { # node $1's view of the balance of address $2
  NODE_ID=$1 "$bin/wallet-cli" getbalance -address "$2" --json | sed -nE 's/.*"balance":([0-9]+).*/\1/p'
}
wait_until() { # wait_until SECONDS WHAT COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for $what"
    sleep 0.2
  done
}
at_height() { # at_height H ID...: every node has reached height H
  local h=$1 id
  shift
  for id in "$@"; do
    local got
    got="$(height_of "$id")"
    [ -n "$got" ] && [ "$got" -ge "$h" ] || return 1
  done
}

echo "== part 1: one node (the data lives in $work/tmp)"
export NODE_ID=$A
show "export NODE_ID=$A"
cmd "$A" wallet-cli createwallet -alias w1
cmd "$A" wallet-cli createwallet -alias w2
cmd "$A" wallet-cli listaddresses
cmd "$A" node createblockchain -address w1
cmd "$A" wallet-cli send -from w1 -to w2 -amount 10 -mint
cmd "$A" wallet-cli getbalance -address w1
cmd "$A" wallet-cli getbalance -address w2
cmd "$A" node printchain
[ "$(balance_of "$A" "$(address_of "$A" w1)")" = 30 ] || fail "w1 should hold 30"
[ "$(balance_of "$A" "$(address_of "$A" w2)")" = 10 ] || fail "w2 should hold 10"

echo
echo "== part 2: three nodes over libp2p on 127.0.0.1 (A=$A, B=$B, C=$C)"
rm -rf tmp
cmd "$A" wallet-cli createwallet -alias w1
cmd "$A" node createblockchain -address w1
show "cp -r tmp/blocks_$A tmp/blocks_$B"
cp -r "tmp/blocks_$A" "tmp/blocks_$B"
show "cp -r tmp/blocks_$A tmp/blocks_$C"
cp -r "tmp/blocks_$A" "tmp/blocks_$C"
cmd "$B" wallet-cli createwallet -alias w2
cmd "$C" wallet-cli createwallet -alias w3
W1="$(address_of "$A" w1)"
W2="$(address_of "$B" w2)"
W3="$(address_of "$C" w3)"
cmd "$A" wallet-cli send -from w1 -to "$W2" -amount 10 -mint

# Each node runs in the background; its log goes to node-<id>.log.
start() { # start NAME ID ARGS...
  local name=$1 id=$2
  shift 2
  local args=(startp2p -listen "/ip4/127.0.0.1/tcp/$id" -no-mdns "$@")
  show "NODE_ID=$id cargo run -p node -- ${args[*]}    # node $name, in the background"
  NODE_ID=$id "$bin/node" "${args[@]}" >"node-$id.out" 2>"node-$id.log" &
  pids+=($!)
  names+=("$name")
}
start A "$A"
wait_until 30 "node A to listen" grep -q "^Listening on /ip4/127.0.0.1" "node-$A.out"
ADDR="$(grep -m1 "^Listening on /ip4/127.0.0.1" "node-$A.out" | sed 's/^Listening on //')"
echo "node A is at $ADDR"
start C "$C" -dest "$ADDR" -minter w3
start B "$B" -dest "$ADDR"
wait_until 60 "nodes B and C to download block 1 from A" at_height 1 "$B" "$C"
wait_until 30 "node C to connect" grep -q "peer connected" "node-$C.log"
# Gossip subscriptions settle within a heartbeat after connecting.
sleep 2

cmd "$B" wallet-cli send -from w2 -to "$W1" -amount 1 -peer "$ADDR"
cmd "$B" wallet-cli send -from w2 -to "$W1" -amount 1 -peer "$ADDR"
echo
echo "== C mints once its mempool holds both payments; every node reaches height 2"
wait_until 60 "every node to reach height 2" at_height 2 "$A" "$B" "$C"
grep -m1 "minted" "node-$C.log" | sed 's/^/[node C] /' || true

echo
echo "== balances of w1, w2 and w3, read from every node"
ok=1
for id in "$A" "$B" "$C"; do
  b1="$(balance_of "$id" "$W1")"
  b2="$(balance_of "$id" "$W2")"
  b3="$(balance_of "$id" "$W3")"
  echo "node $id (height $(height_of "$id")): w1 $b1, w2 $b2, w3 $b3"
  [ "$b1 $b2 $b3" = "32 8 20" ] || ok=0
done
[ "$ok" = 1 ] || fail "expected w1 32, w2 8, w3 20 on every node"
show "NODE_ID=$B cargo run -p wallet-cli -- getbalance -address w2 -peer $ADDR"
NODE_ID=$B "$bin/wallet-cli" getbalance -address w2 -peer "$ADDR"
echo
echo "demo complete: the tutorial's network agrees on height 2 and on every balance"
