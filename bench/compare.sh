#!/usr/bin/env bash
# Side-by-side comparison of citymesh with Mosquitto, nats-server (MQTT) and
# mochi-mqtt on loopback, all driven by the same `citymesh bench`, scenario by
# scenario and broker after broker, repeated ROUNDS times; prints medians and
# the ratio citymesh/peer. Timings on a shared 2-core machine are noisy: read
# the ratios, not the absolute figures.
#
# Usage: bench/compare.sh [-r ROUNDS] [-d SECONDS] [-b "citymesh mosquitto nats mochi"] [-s "scenario ..."] [-c BINARY]
#   -r  rounds, the median is reported (default 3)
#   -d  seconds each traffic scenario publishes (default 5)
#   -b  brokers to run; leave citymesh out to compare the peers only. Besides
#       the four, citymesh-mem is citymesh without a store (--store memory)
#       and mosquitto-persist is Mosquitto with persistence on.
#   -c  a citymesh binary to run as the broker citymesh-ref, e.g. a build of
#       an earlier commit, for before and after in one run (add citymesh-ref
#       to -b; it defaults to the brokers plus citymesh-ref when -c is given)
#   -s  scenarios: qos0-pairs qos1-pairs fanout fanin wildcard latency
#       latency-qos0 idle (latency is QoS 1 at 10 x 1,000 msgs/s,
#       latency-qos0 the same at QoS 0),
#       and the durable ones, whose subscribers keep persistent sessions so a
#       durable broker stores every message before it acknowledges it:
#       durable-64 durable-1k (QoS 1 pairs 10x10, 64 B and 1 KiB) and
#       durable-latency (the same at 1,000 msg/s per publisher).
#       bench/compare.sh -s "durable-64 durable-1k durable-latency" \
#         -b "citymesh citymesh-mem mosquitto-persist mosquitto mochi"
# Needs: go, python3, and (installed with apt-get when missing and running as
# root) the Debian packages mosquitto and nats-server.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
secs=5
brokers="citymesh mosquitto nats mochi"
scenarios="qos0-pairs qos1-pairs fanout fanin wildcard latency idle"
ref=""
brokers_set=""
while getopts "r:d:b:s:c:" o; do
  case $o in
    r) rounds=$OPTARG ;;
    d) secs=$OPTARG ;;
    b) brokers=$OPTARG; brokers_set=1 ;;
    s) scenarios=$OPTARG ;;
    c) ref=$(realpath "$OPTARG") ;;
    *) echo "usage: $0 [-r rounds] [-d seconds] [-b brokers] [-s scenarios] [-c citymesh-binary]"; exit 2 ;;
  esac
done
if [ -n "$ref" ] && [ -z "$brokers_set" ]; then
  brokers="citymesh citymesh-ref ${brokers#citymesh }"
fi
case " $brokers " in
  *" citymesh-ref "*) [ -x "$ref" ] || { echo "citymesh-ref needs -c BINARY"; exit 2; } ;;
esac

need() { command -v "$1" >/dev/null 2>&1; }
if [ "$(id -u)" = 0 ]; then
  missing=()
  need mosquitto || missing+=(mosquitto)
  need nats-server || missing+=(nats-server)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

go build -o "$tmp/citymesh" ./cmd/citymesh
(cd bench/mochi && go build -o "$tmp/mochi" .)
bench="$tmp/citymesh bench"

# free_port prints a loopback TCP port that is free right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

port=""
start_broker() { # name
  port=$(free_port)
  case $1 in
    citymesh)
      "$tmp/citymesh" serve --mqtt "127.0.0.1:$port" --ws "127.0.0.1:$(free_port)" --http "127.0.0.1:$(free_port)" \
        --data "$tmp/cm-data" --log warn >"$tmp/citymesh.log" 2>&1 &
      ;;
    citymesh-ref)
      "$ref" serve --mqtt "127.0.0.1:$port" --ws "127.0.0.1:$(free_port)" --http "127.0.0.1:$(free_port)" \
        --data "$tmp/cm-data" --log warn >"$tmp/citymesh-ref.log" 2>&1 &
      ;;
    citymesh-mem)
      "$tmp/citymesh" serve --mqtt "127.0.0.1:$port" --ws "127.0.0.1:$(free_port)" --http "127.0.0.1:$(free_port)" \
        --data "$tmp/cm-data" --store memory --log error >"$tmp/citymesh-mem.log" 2>&1 &
      ;;
    mosquitto)
      printf 'listener %d 127.0.0.1\nallow_anonymous true\nlog_dest none\nmax_queued_messages 10000\nmax_connections -1\n' "$port" >"$tmp/mosquitto.conf"
      mosquitto -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
      ;;
    mosquitto-persist)
      # Mosquitto's persistence writes its in-memory state to a file every
      # autosave_interval seconds (default 1800) and at shutdown.
      mkdir -p "$tmp/mq-data"
      printf 'listener %d 127.0.0.1\nallow_anonymous true\nlog_dest none\nmax_queued_messages 10000\nmax_connections -1\npersistence true\npersistence_location %s/\nuser root\n' "$port" "$tmp/mq-data" >"$tmp/mosquitto-persist.conf"
      mosquitto -c "$tmp/mosquitto-persist.conf" >"$tmp/mosquitto-persist.log" 2>&1 &
      ;;
    nats)
      mkdir -p "$tmp/js"
      # MQTT in nats-server needs JetStream, and JetStream a server name.
      printf 'server_name: cmp\nlisten: 127.0.0.1:%d\njetstream { store_dir: "%s" }\nmqtt { listen: 127.0.0.1:%d }\n' "$(free_port)" "$tmp/js" "$port" >"$tmp/nats.conf"
      nats-server -c "$tmp/nats.conf" >"$tmp/nats.log" 2>&1 &
      ;;
    mochi)
      "$tmp/mochi" -addr "127.0.0.1:$port" >"$tmp/mochi.log" 2>&1 &
      ;;
  esac
  pid=$!
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "$1 did not start"; cat "$tmp/$1.log"; return 1
}
stop_broker() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=""; rm -rf "$tmp/js" "$tmp/cm-data" "$tmp/mq-data"; }

# NATS speaks only MQTT 3.1.1, so every broker is driven with 3.1.1.
run() { # scenario -> one JSON line
  local common=(-h 127.0.0.1 -p "$port" -V 311 -json -quiet -duration "${secs}s")
  case $1 in
    qos0-pairs) $bench "${common[@]}" -pattern pairs -pub 10 -qos 0 -size 64 ;;
    qos1-pairs) $bench "${common[@]}" -pattern pairs -pub 10 -qos 1 -size 64 ;;
    fanout) $bench "${common[@]}" -pattern fanout -sub 50 -qos 0 -size 64 ;;
    fanin) $bench "${common[@]}" -pattern fanin -pub 50 -qos 0 -size 64 ;;
    wildcard) $bench "${common[@]}" -pattern wildcard -pub 100 -sub 5 -qos 0 -size 64 -topics 10 ;;
    latency) $bench "${common[@]}" -pattern pairs -pub 10 -qos 1 -size 64 -rate 1000 ;;
    latency-qos0) $bench "${common[@]}" -pattern pairs -pub 10 -qos 0 -size 64 -rate 1000 ;;
    durable-64) $bench "${common[@]}" -pattern pairs -pub 10 -qos 1 -size 64 -persistent ;;
    durable-1k) $bench "${common[@]}" -pattern pairs -pub 10 -qos 1 -size 1024 -persistent ;;
    durable-latency) $bench "${common[@]}" -pattern pairs -pub 10 -qos 1 -size 64 -rate 1000 -persistent ;;
    idle) $bench -h 127.0.0.1 -p "$port" -V 311 -json -quiet -connections 10000 -pid "$pid" -hold 2s ;;
  esac
}

results="$tmp/results.jsonl"
: >"$results"
for r in $(seq "$rounds"); do
  for s in $scenarios; do
    for b in $brokers; do
      start_broker "$b"
      if out=$(run "$s" 2>"$tmp/bench.err"); then
        echo "{\"round\":$r,\"scenario\":\"$s\",\"broker\":\"$b\",\"result\":$out}" >>"$results"
        echo "round $r  $s  $b: $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.0f conn/s, %.2f KiB/conn" % (d["connect_per_sec"], d.get("rss_per_connection_bytes",0)/1024) if d.get("connections") else "recv %.0f/s lost %d p99 %.0fus" % (d["received_per_sec"], d["lost"], d["latency_p99_us"]))')" >&2
      else
        echo "round $r  $s  $b: FAILED: $(tail -1 "$tmp/bench.err")" >&2
      fi
      stop_broker
    done
  done
done

mkdir -p bench/results
report="bench/results/compare-$(date -u +%Y%m%dT%H%M%SZ).txt"
python3 - "$results" "$brokers" "$scenarios" <<'PY' | tee "$report"
import json, sys, statistics, platform, os
rows = [json.loads(l) for l in open(sys.argv[1])]
brokers = sys.argv[2].split()
scenarios = sys.argv[3].split()
def med(s, b, key):
    v = [r["result"].get(key, 0) for r in rows if r["scenario"] == s and r["broker"] == b]
    return statistics.median(v) if v else None
metrics = {
    "qos0-pairs": [("received msgs/s", "received_per_sec", True)],
    "qos1-pairs": [("received msgs/s", "received_per_sec", True)],
    "fanout": [("received msgs/s", "received_per_sec", True)],
    "fanin": [("received msgs/s", "received_per_sec", True)],
    "wildcard": [("received msgs/s", "received_per_sec", True)],
    "latency": [("p50 µs", "latency_p50_us", False), ("p99 µs", "latency_p99_us", False), ("max µs", "latency_max_us", False)],
    "latency-qos0": [("p50 µs", "latency_p50_us", False), ("p99 µs", "latency_p99_us", False), ("max µs", "latency_max_us", False)],
    "durable-64": [("received msgs/s", "received_per_sec", True)],
    "durable-1k": [("received msgs/s", "received_per_sec", True)],
    "durable-latency": [("p50 µs", "latency_p50_us", False), ("p99 µs", "latency_p99_us", False), ("max µs", "latency_max_us", False)],
    "idle": [("connects/s", "connect_per_sec", True), ("KiB/conn", "rss_per_connection_bytes", False)],
}
print(f"machine: {platform.machine()}, {os.cpu_count()} cores; rounds: {max(r['round'] for r in rows)}; medians")
hdr = f"{'scenario':15} {'metric':16}" + "".join(f"{b:>18}" for b in brokers) + "".join(f"{'cm/'+b:>21}" for b in brokers if b != "citymesh")
print(hdr)
for s in scenarios:
    for label, key, higher in metrics[s]:
        vals = {b: med(s, b, key) for b in brokers}
        if key == "rss_per_connection_bytes":
            vals = {b: (v / 1024 if v is not None else None) for b, v in vals.items()}
        line = f"{s:15} {label:16}" + "".join(f"{(v if v is not None else float('nan')):18.1f}" for v in vals.values())
        cm = vals.get("citymesh")
        for b in brokers:
            if b == "citymesh":
                continue
            v = vals[b]
            ratio = (cm / v if higher else v / cm) if cm and v else float("nan")
            line += f"{ratio:20.2f}x"
        print(line)
print("per round, in order (" + ", ".join(brokers) + "):")
for s in scenarios:
    for label, key, higher in metrics[s]:
        if key == "rss_per_connection_bytes":
            continue
        cells = []
        for b in brokers:
            v = [r["result"].get(key, 0) for r in rows if r["scenario"] == s and r["broker"] == b]
            cells.append(b + " " + "/".join(f"{x:.0f}" for x in v))
        print(f"  {s:15} {label:16} " + "; ".join(cells))
lost = []
for s in scenarios:
    for b in brokers:
        v = med(s, b, "lost")
        if v:
            lost.append(f"{s}/{b}: {v:.0f} ({100 * v / max(med(s, b, 'expected') or 1, 1):.2f}%)")
if lost:
    print("median messages lost (dropped for subscribers that fell behind):", ", ".join(lost))
print("ratios: >1x means citymesh is better (throughput higher, latency and memory lower)")
PY
echo "written to $report"
