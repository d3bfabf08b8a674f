#!/usr/bin/env bash
# A devnet of N real node processes on loopback, for a person to watch:
#   scripts/devnet.sh N
# Node 1 holds the chain (copied to every node before it starts); each
# other node dials one to three random earlier nodes (--dest) and finds the
# rest through Kademlia. MINTERS nodes mint; a payer on node 1 sends a
# payment every PAY_EVERY seconds to a random node's wallet, submitted
# (send --peer) to a random node, the first one included.
# Every 2 s it prints the nodes' heights, peers and mempools (from each
# node's `status` log line). Ctrl-C, or the end of DURATION seconds, stops
# the payments, waits for the nodes to agree, prints how fast blocks
# spread and whether tips and balances agree on every node, then stops
# every node cleanly.
#
# Environment:
#   BASE_PORT  first TCP port; the nodes use N ports from it (default 4000)
#   MINTERS    how many nodes mint (default 1)
#   PAY_EVERY  seconds between payments (default 1)
#   PREMINE    blocks minted for the payer before the nodes start (default 20)
#   DURATION   seconds to run before stopping by itself (default: until Ctrl-C)
#   DEVNET_DIR where the chains, wallets and logs go (default: a temporary
#              directory, removed at the end unless KEEP=1)
#   DEVNET_BIN_DIR  the directory of already built `node` and `wallet-cli`
#              (default: build them in release mode)
# Exit status: 0 when every node ended on one tip with the same balances.
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-}"
if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 2 ]; then
  echo "usage: scripts/devnet.sh N   (N: 2 or more nodes)" >&2
  exit 2
fi
base="${BASE_PORT:-4000}"
minters="${MINTERS:-1}"
pay_every="${PAY_EVERY:-1}"
premine="${PREMINE:-20}"
duration="${DURATION:-0}"
if [ "$minters" -lt 1 ] || [ "$minters" -ge "$n" ]; then
  echo "MINTERS must be between 1 and N-1 ($((n - 1)))" >&2
  exit 2
fi

if [ -n "${DEVNET_BIN_DIR:-}" ]; then
  bin="$DEVNET_BIN_DIR"
else
  source scripts/setup.sh
  echo "== building the release binaries"
  cargo build --release -q -p node -p wallet-cli
  bin="$CARGO_TARGET_DIR/release"
fi
data="${DEVNET_DIR:-$(mktemp -d)}"
mkdir -p "$data/logs"
id() { echo $((base + $1 - 1)); }
w() { NODE_ID=$(id "$1") "$bin/wallet-cli" --data-dir "$data" "${@:2}"; }
addr_of() { w "$1" listaddresses --json | sed -E 's/.*"address":"([^"]+)".*/\1/'; }

pids=()
payer_pid=""
stopping=0
finish() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap - INT TERM
  set +e
  if [ -n "$payer_pid" ]; then kill "$payer_pid" 2>/dev/null; wait "$payer_pid" 2>/dev/null; fi
  report
  status=$?
  echo "== stopping ${#pids[@]} nodes"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "all nodes stopped."
  if [ -z "${DEVNET_DIR:-}" ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$data"; else echo "logs and chains kept in $data"; fi
  exit "$status"
}
trap finish INT TERM
# Whatever ends the script, no node is left running.
trap 'for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done' EXIT

# The last `status` line of node i's log: "height tip peers mempool".
status_of() {
  grep ' status height=' "$data/logs/$1.log" 2>/dev/null | tail -n 1 |
    sed -E 's/.*height=([0-9]+) tip=([0-9a-f]+) peers=([0-9]+) mempool=([0-9]+).*/\1 \2 \3 \4/'
}

summary() {
  local lines
  lines=$(for i in $(seq "$n"); do s=$(status_of "$i"); [ -n "$s" ] && echo "$s"; done)
  [ -z "$lines" ] && { echo "[$1 s] waiting for the nodes' first status lines"; return; }
  echo "$lines" | awk -v t="$1" -v n="$n" -v paid="$(grep -c '^ok' "$data/payments.log" 2>/dev/null || true)" \
    -v failed="$(grep -c '^failed' "$data/payments.log" 2>/dev/null || true)" '
    { h[NR]=$1; tips[$2]++; p+=$3; if (NR==1 || $3<pmin) pmin=$3; if ($3>pmax) pmax=$3
      if (NR==1 || $1<hmin) hmin=$1; if ($1>hmax) hmax=$1; if ($4>mmax) mmax=$4; m+=$4 }
    END { k=0; for (x in tips) k++
      printf "[%s s] %d/%d nodes | height %d..%d, %d tip(s) | peers %d..%d (mean %.1f) | mempool mean %.1f max %d | payments %d ok, %d failed\n",
        t, NR, n, hmin, hmax, k, pmin, pmax, p/NR, m/NR, mmax, paid, failed }'
  if [ "$n" -le 16 ]; then
    for i in $(seq "$n"); do
      read -r h tip peers pool <<< "$(status_of "$i") - - - -"
      printf "   node %-3s %-5s height %-5s tip %-9s peers %-3s mempool %s\n" "$i" "$(id "$i")" "$h" "$tip" "$peers" "$pool"
    done
  fi
}

# Seconds since midnight of a log timestamp (2026-01-01T12:34:56.789012Z).
ts_awk='function secs(ts) { split(substr(ts, 12, 15), a, ":"); return a[1]*3600 + a[2]*60 + a[3] }'

report() {
  # One tip and one mempool size on every node (a last payment may wait
  # for a second one before a minter takes it), twice a status round apart.
  echo "== waiting for the nodes to agree (up to 60 s)"
  local agreed=0 tips
  states() { for i in $(seq "$n"); do status_of "$i" | cut -d' ' -f1,2,4; done | sort -u; }
  for _ in $(seq 30); do
    sleep 2
    tips=$(states)
    if [ "$(echo "$tips" | grep -c .)" = 1 ]; then
      sleep 6
      [ "$(states)" = "$tips" ] && { agreed=1; break; }
    fi
  done
  summary "end"
  echo "== how blocks spread (from the minters' 'minted block' lines to each node's 'connected block')"
  for i in $(seq "$n"); do
    awk -v node="$i" "$ts_awk"'
      / minted block / { for (f=1; f<=NF; f++) if ($f ~ /^hash=/) printf "M %s %.6f\n", substr($f, 6), secs($1) }
      / connected block / { for (f=1; f<=NF; f++) if ($f ~ /^hash=/) printf "C %s %.6f %s\n", substr($f, 6), secs($1), node }' "$data/logs/$i.log"
  done | awk -v n="$n" '
    $1=="M" { mint[$2]=$3 }
    $1=="C" { seen[$2]++; t[$2, seen[$2]]=$3 }
    END {
      blocks=0; everywhere=0; worst=0
      for (h in mint) {
        blocks++; slow=0
        for (k=1; k<=seen[h]; k++) { d=t[h,k]-mint[h]; if (d>slow) slow=d }
        if (seen[h] >= n) { everywhere++; s[everywhere]=slow; if (slow>worst) worst=slow }
      }
      printf "blocks minted: %d, reached every node: %d (a block that did not lost a race to another)\n", blocks, everywhere
      if (everywhere > 0) {
        for (i=1; i<=everywhere; i++) for (j=i+1; j<=everywhere; j++) if (s[j]<s[i]) { x=s[i]; s[i]=s[j]; s[j]=x }
        printf "slowest node per block: median %.1f ms, worst %.1f ms\n", s[int((everywhere+1)/2)]*1000, worst*1000
      }
    }'
  echo "== payments: $(grep -c '^ok' "$data/payments.log" 2>/dev/null) accepted, $(grep -c '^failed' "$data/payments.log" 2>/dev/null) failed"
  grep '^failed' "$data/payments.log" 2>/dev/null | head -n 3 || true
  echo "== balances on every node"
  local addrs=("$PAYER") i a balances ok=1
  for i in 2 3 4; do [ "$i" -le "$n" ] && addrs+=("$(addr_of "$i")"); done
  for a in "${addrs[@]}"; do
    balances=$(for i in $(seq "$n"); do w 1 getbalance --address "$a" --peer "${ADDRS[$i]}" --json 2>&1 | sed -E 's/.*"balance":([0-9]+).*/\1/'; done | sort | uniq -c)
    if [ "$(echo "$balances" | grep -c .)" = 1 ]; then
      echo "$a: $(echo "$balances" | awk '{print $2}') on all $n nodes"
    else
      ok=0; echo "$a: the nodes disagree:"; echo "$balances"
    fi
  done
  if [ "$agreed" = 1 ] && [ "$ok" = 1 ]; then
    echo "DEVNET OK: all $n nodes on one tip ($(echo "$tips" | tr ' ' ':')), balances agree"
    return 0
  fi
  echo "DEVNET FAILED: tips: $(echo "$tips" | tr '\n' ' ')"
  return 1
}

echo "== wallets and the chain ($n nodes from port $base, in $data)"
w 1 createwallet -alias payer > /dev/null
PAYER=$(addr_of 1)
for i in $(seq 2 "$n"); do w "$i" createwallet -alias me > /dev/null; done
NODE_ID=$(id 1) "$bin/node" --data-dir "$data" createblockchain -address payer > /dev/null
for _ in $(seq "$premine"); do w 1 send -from payer -to payer -amount 1 -mint --threads 1 > /dev/null; done
for i in $(seq 2 "$n"); do cp -r "$data/blocks_$(id 1)" "$data/blocks_$(id "$i")"; done

echo "== starting $n nodes ($minters minting)"
declare -A ADDRS
for i in $(seq "$n"); do
  args=(startp2p -listen "/ip4/127.0.0.1/tcp/$(id "$i")" --no-mdns --threads 1)
  if [ "$i" -gt 1 ]; then
    for _ in $(seq $((RANDOM % 3 + 1))); do args+=(-dest "${ADDRS[$((RANDOM % (i - 1) + 1))]}"); done
  fi
  if [ "$i" -ge 2 ] && [ "$i" -le $((minters + 1)) ]; then args+=(-minter me); fi
  NODE_ID=$(id "$i") RUST_LOG="${RUST_LOG:-info}" "$bin/node" --data-dir "$data" "${args[@]}" \
    > "$data/logs/$i.out" 2> "$data/logs/$i.log" &
  pids+=($!)
  for _ in $(seq 600); do grep -q "^Listening on /ip4/127.0.0.1" "$data/logs/$i.out" 2>/dev/null && break; sleep 0.05; done
  # Not found is not an error here: the line below says which node and why.
  ADDRS[$i]=$(grep -m1 "^Listening on /ip4/127.0.0.1" "$data/logs/$i.out" | sed 's/^Listening on //' || true)
  [ -n "${ADDRS[$i]}" ] || { echo "node $i did not start; its log:"; tail -n 20 "$data/logs/$i.log"; finish; }
done
echo "node 1 is at ${ADDRS[1]}"

# Payments: to a random node's wallet, submitted to a random node (the
# first payment to node 1, which every node was told to dial first).
(
  k=0
  while true; do
    sleep "$pay_every"
    to=$((RANDOM % (n - 1) + 2))
    via=$([ "$k" = 0 ] && echo 1 || echo $((RANDOM % n + 1)))
    if out=$(w 1 send -from payer -to "$(addr_of "$to")" -amount 1 --fee 1 -peer "${ADDRS[$via]}" 2>&1); then
      echo "ok via node $via" >> "$data/payments.log"
    else
      echo "failed via node $via: $out" >> "$data/payments.log"
    fi
    k=$((k + 1))
  done
) &
payer_pid=$!

start=$(date +%s)
while true; do
  sleep 2
  now=$(date +%s)
  summary $((now - start))
  if [ "$duration" -gt 0 ] && [ $((now - start)) -ge "$duration" ]; then finish; fi
done
