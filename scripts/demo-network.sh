#!/usr/bin/env bash
# The tutorial's three-node network, for a person to watch:
#   node A (3000) holds the chain, node C (3002) mints for w3, node B (3001)
#   pays w1 twice through A; C mints one block with both payments and all
#   three nodes agree. Logs stream until Ctrl-C, which stops every node cleanly.
# Ports: BASE_PORT (default 3000) and the two after it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
build_bins
bin="$CARGO_TARGET_DIR/debug"
base="${BASE_PORT:-3000}"
A=$base; B=$((base + 1)); C=$((base + 2))
data="$(mktemp -d)"
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping the nodes..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$data"
  echo "all nodes stopped."
}
trap cleanup INT TERM EXIT

w() { NODE_ID=$1 "$bin/wallet-cli" --data-dir "$data" "${@:2}"; }
n() { NODE_ID=$1 "$bin/node" --data-dir "$data" "${@:2}"; }
addr_of() { w "$1" listaddresses --json | sed -E 's/.*"address":"([^"]+)".*/\1/'; }

echo "== wallets and the chain"
w $A createwallet -alias w1; w $B createwallet -alias w2; w $C createwallet -alias w3
W1=$(addr_of $A); W2=$(addr_of $B); W3=$(addr_of $C)
n $A createblockchain -address w1
cp -r "$data/blocks_$A" "$data/blocks_$B"; cp -r "$data/blocks_$A" "$data/blocks_$C"
w $A send -from w1 -to "$W2" -amount 10 -mint

echo "== starting the nodes (logs below)"
NODE_ID=$A "$bin/node" --data-dir "$data" startp2p -listen "/ip4/127.0.0.1/tcp/$A" --no-mdns > "$data/a.out" 2> >(sed -u "s/^/[A] /" >&2) &
pids+=($!)
for _ in $(seq 100); do grep -q "^Listening on /ip4/127.0.0.1" "$data/a.out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(grep -m1 "^Listening on /ip4/127.0.0.1" "$data/a.out" | sed 's/^Listening on //')
echo "node A is at $ADDR"
NODE_ID=$C "$bin/node" --data-dir "$data" startp2p -listen "/ip4/127.0.0.1/tcp/$C" --no-mdns -dest "$ADDR" -minter w3 > /dev/null 2> >(sed -u "s/^/[C] /" >&2) &
pids+=($!)
NODE_ID=$B "$bin/node" --data-dir "$data" startp2p -listen "/ip4/127.0.0.1/tcp/$B" --no-mdns -dest "$ADDR" > /dev/null 2> >(sed -u "s/^/[B] /" >&2) &
pids+=($!)
sleep 4

echo "== B pays w1 twice through A"
w $B send -from w2 -to "$W1" -amount 1 -peer "$ADDR"
w $B send -from w2 -to "$W1" -amount 1 -peer "$ADDR"
sleep 3
echo "== balances seen by each node (w1, w2, w3)"
for id in $A $B $C; do
  echo "node $id: $(w $id getbalance -address "$W1" --json) $(w $id getbalance -address "$W2" --json) $(w $id getbalance -address "$W3" --json)"
done
echo "== the network keeps running; press Ctrl-C to stop every node"
wait
