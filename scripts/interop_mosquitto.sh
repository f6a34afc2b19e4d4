#!/usr/bin/env bash
# Interoperability test: drives a citymesh broker with Eclipse Mosquitto's
# command line clients (mosquitto_pub, mosquitto_sub) in MQTT 3.1.1 and 5.0.
# Usage: scripts/interop_mosquitto.sh [path/to/citymesh]
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in mosquitto_pub mosquitto_sub; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed (apt-get install mosquitto-clients)"; exit 0; }
done

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

bin=${1:-}
if [ -z "$bin" ]; then
  bin=$tmp/citymesh
  go build -o "$bin" ./cmd/citymesh
fi

# A free loopback port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 28830)
"$bin" serve --mqtt "127.0.0.1:$port" --ws off --http off --data "$tmp/data" --log warn >"$tmp/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  mosquitto_pub -h 127.0.0.1 -p "$port" -t ready -n 2>/dev/null && break
  sleep 0.05
done

fail=0
pass=0
check() { # name expected actual
  if [ "$2" = "$3" ]; then pass=$((pass+1)); echo "ok   $1"; else fail=$((fail+1)); echo "FAIL $1: want [$2] got [$3]"; fi
}
pub() { mosquitto_pub -h 127.0.0.1 -p "$port" "$@"; }
sub() { timeout 10 mosquitto_sub -h 127.0.0.1 -p "$port" "$@"; }

# start_sub OUT SYNC ARGS...: start mosquitto_sub in the background, also
# subscribed to the retained topic SYNC, and return once the retained message
# has arrived, which proves the subscription is in place. Lines go to OUT.
start_sub() {
  local out=$1 sync=$2; shift 2
  pub -t "$sync" -r -q 1 -m sync # QoS 1: stored before the subscriber starts
  mosquitto_sub -W 20 -h 127.0.0.1 -p "$port" -t "$sync" -v "$@" >"$out" &
  bg=$!
  pids+=($bg)
  for _ in $(seq 200); do
    grep -q "^$sync sync" "$out" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "subscriber on $sync did not start"; return 1
}
payloads() { grep -v " sync$" "$1" | cut -d' ' -f2- | tr '\n' ' '; }

for V in mqttv311 mqttv5; do
  # QoS 0, 1 and 2 round trips.
  for q in 0 1 2; do
    start_sub "$tmp/rt" "sync/rt/$V/$q" -V $V -t "rt/$V/$q" -q $q -C 2
    pub -V $V -t "rt/$V/$q" -q $q -m "hello-$q"
    wait $bg || true
    check "$V QoS $q round trip" "hello-$q " "$(payloads "$tmp/rt")"
  done

  # Retained message to a late subscriber.
  pub -V $V -t "ret/$V" -r -q 1 -m kept
  check "$V retained to a late subscriber" "kept" "$(sub -V $V -t "ret/$V" -C 1)"

  # Will on abrupt disconnect: a client with a will, killed with -9.
  start_sub "$tmp/will" "sync/will/$V" -V $V -t "will/$V/watch" -C 2
  watcher=$bg
  start_sub "$tmp/dying" "sync/dying/$V" -V $V -i "dying-$V" --will-topic "will/$V/watch" --will-payload gone --will-qos 1
  kill -9 $bg
  wait $watcher || true
  check "$V will on abrupt disconnect" "gone " "$(payloads "$tmp/will")"

  # Queued QoS 1 delivered to a persistent session on reconnect.
  extra=()
  [ $V = mqttv5 ] && extra=(-x 60)
  start_sub "$tmp/p" "sync/persist/$V" -V $V -t "persist/$V" -q 1 -c -i "persist-$V" "${extra[@]}"
  kill $bg; wait $bg 2>/dev/null || true
  for i in 1 2 3; do pub -V $V -t "persist/$V" -q 1 -m "queued-$i"; done
  got=$(sub -V $V -t "persist/$V" -q 1 -c -i "persist-$V" "${extra[@]}" -C 3 | tr '\n' ' ')
  check "$V queued QoS 1 to a persistent session" "queued-1 queued-2 queued-3 " "$got"
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
