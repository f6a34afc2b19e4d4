#!/usr/bin/env bash
# The whole path of the reference campus on this machine, over loopback, each
# part its own process, as a city runs it:
#
#   citymesh sim --load-rate 1     every information point of the campus once a
#                                  second (35,666 values/s per copy), in real
#                                  time: The Things Stack and ChirpStack uplinks
#                                  to a Mosquitto that plays both network
#                                  servers' MQTT endpoints (MQTT 3.1.1, QoS 0),
#                                  building gateways' and the robot's events to
#                                  citymesh (MQTT 5, QoS 1, one connection each)
#   mosquitto                      the network servers' endpoint
#   citymesh run connector         the connectors: read the endpoint, decode
#                                  with the device codecs, publish measurement,
#                                  uplink and status events to citymesh (QoS 1)
#   citymesh serve                 the broker, its embedded store on disk in a
#                                  temporary directory (acknowledged = stored)
#
# For each number of campus copies (--copies; the connectors know the copies'
# devices through their configuration's copies key) it measures, over a window
# after the simulator's warm-up, the CPU each process used (utime + stime from
# /proc/PID/stat) in cores, and checks the run: the simulator kept real time
# (its wall time at most 2 % over the simulated span), nothing lost (every
# uplink the simulator sent was received by the connectors, every event the
# simulator and the connectors published was received by citymesh, no publish
# failed, nothing dropped). It stops at the first number of copies that fails
# and reports the largest that passed.
#
# Usage: bench/campus.sh [-c "1 2 3 4"] [-d SECONDS] [-w SECONDS] [-m disk|memory] [-S] [-T] [-k FILE] [-P]
#   -c  numbers of copies to run, ascending (default "1 2 3 4 5 6 8")
#   -d  seconds the simulator plays, simulated = wall time (default 60)
#   -w  seconds before the CPU window opens (default 15; the window closes 5 s
#       before the simulator ends)
#   -m  citymesh's store: disk (default, fsynced group commits) or memory
#   -S  add a subscriber of every event (citymesh sub -t '#', to /dev/null)
#   -T  citymesh serve also runs the digital twin with its history (twin:
#       section) and the energy, vineyard and robot services (services:
#       section): the whole of citymesh (serve + connectors) on the campus
#   -k  the campus file (default examples/campus/campus.yaml)
#   -P  also write CPU profiles of citymesh serve and of the connectors over
#       the CPU window to bench/results/campus-TIMESTAMP-COPIES-{serve,connector}.pprof
# The report goes to standard output and bench/results/campus-TIMESTAMP.txt.
# Needs go, mosquitto (Debian package mosquitto), curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

copies_list="1 2 3 4 5 6 8"
secs=60
warm=15
store=disk
subscriber=0
whole=0
profile=0
campus=examples/campus/campus.yaml
while getopts "c:d:w:m:STk:P" o; do
  case $o in
    c) copies_list=$OPTARG ;;
    d) secs=$OPTARG ;;
    w) warm=$OPTARG ;;
    m) store=$OPTARG ;;
    S) subscriber=1 ;;
    T) whole=1 ;;
    k) campus=$OPTARG ;;
    P) profile=1 ;;
    *) echo "usage: $0 [-c copies] [-d seconds] [-w seconds] [-m disk|memory] [-S] [-T] [-k campus] [-P]"; exit 2 ;;
  esac
done
if [ $((secs - warm - 5)) -lt 10 ]; then
  echo "$0: -d $secs leaves a CPU window of less than 10 s after -w $warm" >&2
  exit 2
fi
mosquitto=$(command -v mosquitto || true)
for p in /usr/sbin/mosquitto /usr/local/sbin/mosquitto; do
  [ -z "$mosquitto" ] && [ -x "$p" ] && mosquitto=$p
done
if [ -z "$mosquitto" ]; then
  echo "$0: mosquitto is not installed (apt-get install mosquitto): it plays the network servers' endpoint" >&2
  exit 1
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$tmp/citymesh" ./cmd/citymesh
cm="$tmp/citymesh"
hz=$(getconf CLK_TCK)
campus_abs=$(cd "$(dirname "$campus")" && pwd)/$(basename "$campus")
codecs_abs=$(pwd)/examples/campus/codecs

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# metric ADDR NAME [LABEL]: the sum of a metric's series (with LABEL in them).
metric() {
  curl -sf "http://$1/metrics" | awk -v n="$2" -v l="${3:-}" '
    index($0, n) == 1 && (substr($0, length(n) + 1, 1) == " " || substr($0, length(n) + 1, 1) == "{") && index($0, l) { s += $NF }
    END { printf "%.0f\n", s }'
}

# ticks PID: CPU time of a process so far, in clock ticks.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# rss PID: resident memory in MiB.
rss() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# wait_for WHAT SECONDS COMMAND...: until the command succeeds.
wait_for() {
  local what=$1 t=$2
  shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then
      echo "$0: $what did not happen within $t s" >&2
      return 1
    fi
    sleep 0.2
  done
}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
report=bench/results/campus-$stamp.txt
{
  echo "# bench/campus.sh $*"
  echo "# $(date -u +%FT%TZ), $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# campus $campus, store $store, subscriber $([ $subscriber = 1 ] && echo yes || echo no), ${secs} s per run, CPU window from ${warm} s to $((secs - 5)) s"
  printf "%-6s %9s %7s %8s | %6s %9s %6s %9s %12s | %6s %6s | %5s %8s %s\n" copies values/s msgs/s uplinks/s sim mosquitto serve connector serve+conn "serve" "conn" lost sim_wall result
  printf "%-6s %9s %7s %8s | %6s %9s %6s %9s %12s | %6s %6s | %5s %8s %s\n" "" "" "" "" cores cores cores cores cores MiB MiB "" s ""
} | tee "$report"

best=0
for n in $copies_list; do
  dir=$tmp/copies-$n
  mkdir -p "$dir"
  ns=$(free_port); mqtt=$(free_port); http=$(free_port); chttp=$(free_port)
  printf 'per_listener_settings false\nallow_anonymous true\nlog_dest none\npersistence false\nmax_queued_messages 0\nlistener %s 127.0.0.1\n' "$ns" >"$dir/mosquitto.conf"
  [ "$(id -u)" = 0 ] && echo "user root" >>"$dir/mosquitto.conf"
  "$mosquitto" -c "$dir/mosquitto.conf" & mpid=$!; pids+=("$mpid")
  serveconf=()
  if [ $whole = 1 ]; then
    cat >"$dir/serve.yaml" <<EOF
twin:
  enabled: true
  campus: $campus_abs
  copies: $n
services:
  energy:
    config: {campus: $campus_abs, tariff: $PWD/energy/live/campus-tariff.yaml}
  vineyard:
    config: {campus: $campus_abs}
  robot:
    config:
      robots: [{id: loomi, site: campus, route: $PWD/examples/campus/loomi-route.yaml}]
EOF
    serveconf=(--config "$dir/serve.yaml")
  fi
  "$cm" serve "${serveconf[@]}" --mqtt "127.0.0.1:$mqtt" --ws off --http "127.0.0.1:$http" --data "$dir/data" --store "$store" --log warn 2>"$dir/serve.log" &
  spid=$!; pids+=("$spid")
  echo "NNSXS.CAMPUS-BENCH" >"$dir/ttn.key"
  cat >"$dir/connectors.yaml" <<EOF
connectors:
  campus: $campus_abs
  codecs: $codecs_abs
  copies: $n
  reconnect_min: 100ms
  tts:
    - {application: wartberg-ttn, url: "tcp://127.0.0.1:$ns", api_key_file: $dir/ttn.key}
  chirpstack:
    - {application: soil-twin, url: "tcp://127.0.0.1:$ns"}
EOF
  wait_for "citymesh serve" 30 curl -sf "http://127.0.0.1:$http/healthz"
  "$cm" run connector --config "$dir/connectors.yaml" --broker "mqtt://127.0.0.1:$mqtt" --client-id bench-connectors \
    --http "127.0.0.1:$chttp" --log warn 2>"$dir/connector.log" &
  cpid=$!; pids+=("$cpid")
  connected() { test "$(metric "127.0.0.1:$chttp" citymesh_connector_connected)" = 2; }
  wait_for "the connectors to connect" 60 connected
  if [ $subscriber = 1 ]; then
    "$cm" sub -p "$mqtt" -t '#' -q 1 >/dev/null 2>&1 & pids+=($!)
  fi

  "$cm" sim --campus "$campus" --load-rate 1 --speed 1 --duration "${secs}s" --copies "$n" \
    --broker "mqtt://127.0.0.1:$mqtt" --tts "mqtt://127.0.0.1:$ns" --chirpstack "mqtt://127.0.0.1:$ns" --stats 10s >"$dir/sim.log" 2>&1 &
  simpid=$!; pids+=("$simpid")
  sleep "$warm"
  declare -A t0 t1
  for p in $simpid $mpid $spid $cpid; do t0[$p]=$(ticks "$p"); done
  w0=$(date +%s.%N)
  if [ $profile = 1 ]; then
    for part in "serve $http" "connector $chttp"; do
      set -- $part
      curl -sf -o "${report%.txt}-$n-$1.pprof" "http://127.0.0.1:$2/debug/pprof/profile?seconds=$((secs - warm - 6))" &
      pids+=($!)
    done
  fi
  sleep $((secs - warm - 5))
  for p in $simpid $mpid $spid $cpid; do t1[$p]=$(ticks "$p"); done
  w1=$(date +%s.%N)
  srss=$(rss "$spid"); crss=$(rss "$cpid")
  simok=1
  wait "$simpid" || simok=0

  # What the simulator sent, and what arrived: the connectors have 10 s to
  # publish the last uplinks' events, citymesh to count them.
  up=$(sed -n 's/^sim: uplinks \([0-9]*\),.*/\1/p' "$dir/sim.log")
  city=$(sed -n 's/^sim: done.*building+robot \([0-9]*\) msgs.*/\1/p' "$dir/sim.log")
  errs=$(awk '/^sim: done/ { while (match($0, /\([0-9]+ errors\)/)) { s += substr($0, RSTART + 1, RLENGTH - 9); $0 = substr($0, RSTART + RLENGTH) } }
    END { print s + 0 }' "$dir/sim.log")
  values=$(sed -n 's/^sim: done.* values \([0-9]*\) .*/\1/p' "$dir/sim.log")
  msgs=$(sed -n 's/^sim: done.*tts+chirpstack \([0-9]*\) msgs.*building+robot \([0-9]*\) msgs.*/\1 \2/p' "$dir/sim.log" | awk '{ print $1 + $2 }')
  # Go writes the wall time as a duration: 59.98s, 1m0.04s, 2m3.5s.
  wall=$(sed -n 's/^sim: \(.*\) of wall time/\1/p' "$dir/sim.log" | python3 -c '
import re, sys
d = sys.stdin.read().strip()
units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}
print("%.1f" % sum(float(v) * units[u] for v, u in re.findall(r"([0-9.]+)(ms|µs|us|ns|h|m|s)", d)) if d else "999")')
  up=${up:-0}; city=${city:-0}; errs=${errs:-0}; values=${values:-0}; msgs=${msgs:-0}; wall=${wall:-999}
  # brokerin: what citymesh received from the simulator and the connectors:
  # every publish less those of the twin (its snapshots) and the services
  # (-T), which are in-process clients of the broker.
  # With -T the counts are read once they stand still for a second (a
  # derived publish is counted by the broker before its publisher counts it;
  # the twin publishes once a second, the services after their debounce).
  derived() {
    [ $whole = 1 ] || { echo 0; return; }
    # + 1: the end marker of the twin's recovery at its start.
    echo $(( $(metric "127.0.0.1:$http" citymesh_twin_snapshots_published_total) + $(metric "127.0.0.1:$http" citymesh_service_messages_published_total) + 1 ))
  }
  brokerin() {
    local b d b1 d1 i
    b=$(metric "127.0.0.1:$http" citymesh_messages_received_total); d=$(derived)
    [ $whole = 1 ] || { echo "$b"; return; }
    for i in $(seq 15); do
      sleep 1
      b1=$(metric "127.0.0.1:$http" citymesh_messages_received_total); d1=$(derived)
      [ "$b1" = "$b" ] && [ "$d1" = "$d" ] && break
      b=$b1; d=$d1
    done
    echo $((b - d))
  }
  settled() {
    local r e b
    r=$(metric "127.0.0.1:$chttp" citymesh_connector_uplinks_received_total)
    e=$(metric "127.0.0.1:$chttp" citymesh_connector_events_published_total)
    b=$(brokerin)
    [ "$r" -ge "$up" ] && [ "$b" -ge $((city + e)) ]
  }
  wait_for "the last events to arrive" 10 settled || true
  received=$(metric "127.0.0.1:$chttp" citymesh_connector_uplinks_received_total)
  events=$(metric "127.0.0.1:$chttp" citymesh_connector_events_published_total)
  failures=$(metric "127.0.0.1:$chttp" citymesh_connector_failures_total)
  brecv=$(brokerin)
  dropped=$(metric "127.0.0.1:$http" citymesh_messages_dropped_total)
  lost=$(( (up - received) + (city + events - brecv) + errs + failures + dropped ))
  [ $lost -lt 0 ] && lost=$((-lost))

  cores() { awk -v a="$1" -v b="$2" -v w0="$w0" -v w1="$w1" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz / (w1 - w0) }'; }
  csim=$(cores "${t0[$simpid]}" "${t1[$simpid]}")
  cmosq=$(cores "${t0[$mpid]}" "${t1[$mpid]}")
  cserve=$(cores "${t0[$spid]}" "${t1[$spid]}")
  cconn=$(cores "${t0[$cpid]}" "${t1[$cpid]}")
  cboth=$(awk -v a="$cserve" -v b="$cconn" 'BEGIN { printf "%.2f", a + b }')
  kept=$(awk -v w="$wall" -v d="$secs" 'BEGIN { print (w <= d * 1.02 + 0.5) ? 1 : 0 }')
  result=ok
  if [ $simok = 0 ] || [ "$kept" = 0 ] || [ $lost -ne 0 ] || [ "$up" = 0 ]; then
    result="FAILED:"
    [ $simok = 0 ] && result+=" sim exited with an error;"
    [ "$kept" = 0 ] && result+=" the simulator fell behind real time;"
    [ $lost -ne 0 ] && result+=" lost: uplinks $((up - received)), events $((city + events - brecv)), sim errors $errs, connector failures $failures, dropped $dropped;"
  fi
  printf "%-6s %9.0f %7.0f %8.1f | %6s %9s %6s %9s %12s | %6s %6s | %5s %8s %s\n" "$n" \
    "$(awk -v v="$values" -v s="$secs" 'BEGIN { print v / s }')" "$(awk -v v="$msgs" -v s="$secs" 'BEGIN { print v / s }')" \
    "$(awk -v v="$up" -v s="$secs" 'BEGIN { print v / s }')" \
    "$csim" "$cmosq" "$cserve" "$cconn" "$cboth" "$srss" "$crss" "$lost" "$wall" "$result" | tee -a "$report"

  for p in $cpid $spid $mpid; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  pids=()
  rm -rf "$dir/data"
  if [ "$result" != ok ]; then
    break
  fi
  best=$n
done
echo "# largest number of campus copies sustained without loss: $best ($((best * 35666)) values/s of the reference campus)" | tee -a "$report"
echo "# load average at the end $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$report"
