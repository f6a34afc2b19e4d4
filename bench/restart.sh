#!/usr/bin/env bash
# Restart with a large backlog: SESSIONS offline persistent sessions with
# MESSAGES queued QoS 1 messages each are built with `citymesh bench
# --backlog`; then the broker stops, starts again on the same data, and the
# script reports how long it took to accept connections, its resident memory
# right after, and how fast the sessions then drain (`citymesh bench --drain`,
# which also checks that nothing was lost, duplicated or reordered).
#
# citymesh is stopped with SIGKILL: its store is durable, so a crash is the
# honest test. Mosquitto keeps queued messages in memory and writes them to
# its persistence file at shutdown (and every autosave_interval); it is
# stopped with SIGTERM so that it has something to restart from.
#
# Usage: bench/restart.sh [-n SESSIONS] [-m MESSAGES] [-b "citymesh mosquitto"]
set -euo pipefail
cd "$(dirname "$0")/.."

sessions=10000
messages=100
brokers="citymesh mosquitto"
while getopts "n:m:b:" o; do
  case $o in
    n) sessions=$OPTARG ;;
    m) messages=$OPTARG ;;
    b) brokers=$OPTARG ;;
    *) echo "usage: $0 [-n sessions] [-m messages] [-b brokers]"; exit 2 ;;
  esac
done
if [ "$(id -u)" = 0 ] && ! command -v mosquitto >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
go build -o "$tmp/citymesh" ./cmd/citymesh
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
port=$(free_port)
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

start() { # broker
  case $1 in
    citymesh)
      "$tmp/citymesh" serve --mqtt "127.0.0.1:$port" --ws off --http off --data "$tmp/cm-data" --log warn >>"$tmp/citymesh.log" 2>&1 &
      ;;
    mosquitto)
      mkdir -p "$tmp/mq-data"
      printf 'listener %d 127.0.0.1\nallow_anonymous true\nlog_dest none\nmax_connections -1\npersistence true\npersistence_location %s/\nuser root\nmax_queued_messages 0\nmax_inflight_messages 1024\n' \
        "$port" "$tmp/mq-data" >"$tmp/mosquitto.conf"
      mosquitto -c "$tmp/mosquitto.conf" >>"$tmp/mosquitto.log" 2>&1 &
      ;;
  esac
  pid=$!
  for _ in $(seq 6000); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.005
  done
  echo "$1 did not start"; return 1
}

report="$tmp/report.txt"
{
  echo "restart with a backlog: $sessions sessions x $messages QoS 1 messages of 64 B; $(uname -m), $(nproc) cores"
  printf '%-10s %14s %14s %14s %14s %12s %s\n' broker "fill msgs/s" "RSS full MB" "restart s" "RSS after MB" "drain msgs/s" "drain check"
} >"$report"
for b in $brokers; do
  start "$b"
  fill=$("$tmp/citymesh" bench -h 127.0.0.1 -p "$port" -V 5 --backlog "$sessions" --backlog-messages "$messages" --pub 4 --json --quiet)
  full=$(rss "$pid")
  if [ "$b" = citymesh ]; then kill -9 "$pid"; else kill -TERM "$pid"; fi
  wait "$pid" 2>/dev/null || true
  t0=$(date +%s.%N)
  start "$b"
  t1=$(date +%s.%N)
  after=$(rss "$pid")
  drain=$("$tmp/citymesh" bench -h 127.0.0.1 -p "$port" -V 5 --drain "$sessions" --backlog-messages "$messages" --json --quiet)
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  python3 - "$b" "$fill" "$full" "$t0" "$t1" "$after" "$drain" >>"$report" <<'PY'
import json, sys
b, fill, full, t0, t1, after, drain = sys.argv[1:]
f, d = json.loads(fill), json.loads(drain)
check = f"lost {d['lost']}, duplicates {d['duplicates']}, out of order {d['out_of_order']} of {d['expected']}"
print(f"{b:10} {f['sent_per_sec']:14.0f} {int(full)/1024:14.1f} {float(t1)-float(t0):14.2f} {int(after)/1024:14.1f} {d['received_per_sec']:12.0f} {check}")
PY
done
mkdir -p bench/results
out="bench/results/restart-$(date -u +%Y%m%dT%H%M%SZ).txt"
cp "$report" "$out"
cat "$out"
echo "written to $out"
