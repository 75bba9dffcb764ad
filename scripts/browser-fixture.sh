#!/usr/bin/env bash
# Starts the live native nodes the browser tests talk to, on loopback:
#   - an honest node serving a generated chain (WebSocket + WebRTC-direct),
#   - one test-only dishonest node per mode (bad-signature, wrong-parent, forged-proof),
#   - a node serving a fork of that chain signed by the same validators (equivocation).
# Chains come from `headway gen-chain`: the real block builder, signed by every validator.
#
#   scripts/browser-fixture.sh start DIR [VALIDATORS] [BLOCKS]   # writes DIR/fixture.json
#   scripts/browser-fixture.sh stop DIR
#
# DIR/fixture.json is what the browser tests read (as HEADWAY_BROWSER_FIXTURE, at compile
# time). Needs target/debug/headway (or HEADWAY_BIN).
set -euo pipefail
cd "$(dirname "$0")/.."

cmd=${1:?usage: $0 start|stop DIR [VALIDATORS] [BLOCKS]}
dir=${2:?usage: $0 start|stop DIR [VALIDATORS] [BLOCKS]}
bin=${HEADWAY_BIN:-target/debug/headway}

stop() {
  if [ -f "$dir/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$dir/pids"
    rm -f "$dir/pids"
  fi
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi

validators=${3:-4}
blocks=${4:-1100}
fork_at=$((blocks - 50))
stop
rm -rf "$dir"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

"$bin" gen-chain --out "$dir/gen-chain" --validators "$validators" --blocks "$blocks" \
  --hand-over-every 100 >"$dir/gen.log"
"$bin" gen-chain --out "$dir/gen-fork" --fork-of "$dir/gen-chain" --fork-at "$fork_at" >>"$dir/gen.log"

# node NAME DATA_DIR [extra node args...]: starts a node on fresh loopback ports.
node() {
  local name=$1 data=$2
  shift 2
  mkdir -p "$dir/$name"
  # Each node gets its own copy of the store: redb allows one writer per file.
  cp -r "$data/." "$dir/$name/"
  HEADWAY_LOG=${HEADWAY_LOG:-warn} "$bin" node --data-dir "$dir/$name" \
    --genesis "$dir/$name/genesis.json" --addr-file "$dir/$name/addrs" "$@" \
    >"$dir/$name.log" 2>&1 &
  echo $! >>"$dir/pids"
}

node honest "$dir/gen-chain" --listen /ip4/127.0.0.1/tcp/0/ws \
  --listen /ip4/127.0.0.1/udp/0/webrtc-direct
for mode in bad-signature wrong-parent forged-proof; do
  node "$mode" "$dir/gen-chain" --listen /ip4/127.0.0.1/tcp/0/ws --dishonest "$mode"
done
node fork "$dir/gen-fork" --listen /ip4/127.0.0.1/tcp/0/ws

for name in honest bad-signature wrong-parent forged-proof fork; do
  for _ in $(seq 1 200); do
    [ -s "$dir/$name/addrs" ] && break
    sleep 0.05
  done
  if [ ! -s "$dir/$name/addrs" ]; then
    echo "node $name did not start; its log:" >&2
    cat "$dir/$name.log" >&2
    stop
    exit 1
  fi
done

python3 - "$dir" "$fork_at" <<'EOF'
import json, sys
d, fork_at = sys.argv[1], int(sys.argv[2])
fx = json.load(open(f"{d}/gen-chain/fixture.json"))
def addrs(name):
    return open(f"{d}/{name}/addrs").read().split()
def ws(name):
    return next(a for a in addrs(name) if "/ws/" in a)
out = {
    "checkpoint": fx["checkpoint"],
    "genesisHash": fx["genesis_hash"],
    "headHeight": fx["head_height"],
    "handOvers": fx["hand_over_heights"],
    "validators": fx["spec"]["validators"],
    "honestWs": ws("honest"),
    "honestWebrtc": next(a for a in addrs("honest") if "/webrtc-direct/" in a),
    "dishonest": {m: ws(m) for m in ["bad-signature", "wrong-parent", "forged-proof"]},
    "forkWs": ws("fork"),
    "forkAt": fork_at,
    "events": [{"height": s["height"], "id": s["event_id"]} for s in fx["samples"]],
}
json.dump(out, open(f"{d}/fixture.json", "w"), indent=1)
EOF
echo "$dir/fixture.json"
