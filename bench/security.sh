#!/usr/bin/env bash
# The cost of security, side by side in one run: throughput of citymesh and
# Mosquitto over plain TCP and over TLS, and of citymesh with 1,000 ACL rules
# against none, driven by the same `citymesh bench` (QoS 0 and QoS 1 pairs,
# 10 publishers, 64 B), ROUNDS times interleaved; prints medians and ratios.
#
# Usage: bench/security.sh [-r ROUNDS] [-d SECONDS]
# Needs: go, python3, openssl, and (installed with apt-get when missing and
# running as root) mosquitto.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
secs=5
while getopts "r:d:" o; do
  case $o in
    r) rounds=$OPTARG ;;
    d) secs=$OPTARG ;;
    *) echo "usage: $0 [-r rounds] [-d seconds]"; exit 2 ;;
  esac
done
if [ "$(id -u)" = 0 ] && ! command -v mosquitto >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
fi

tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
go build -o "$tmp/citymesh" ./cmd/citymesh
bench="$tmp/citymesh bench"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# A CA and a server certificate for 127.0.0.1 (ECDSA P-256).
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/ca.key" 2>/dev/null
openssl req -x509 -new -key "$tmp/ca.key" -subj /CN=bench-ca -days 2 -out "$tmp/ca.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/server.key" 2>/dev/null
openssl req -new -key "$tmp/server.key" -subj /CN=127.0.0.1 -out "$tmp/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$tmp/ext"
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial -days 2 \
  -extfile "$tmp/ext" -out "$tmp/server.pem" 2>/dev/null

# 999 rules that do not apply to the bench clients, then the one that does.
{
  echo "acl:"
  echo "  default: deny"
  echo "  rules:"
  for i in $(seq 0 998); do
    echo "    - allow: [all]"
    echo "      topics: [city/b$i/+/meter/%u/#]"
    echo "      users: [user-$i]"
  done
  echo "    - allow: [all]"
  echo "      topics: [\"bench/#\"]"
} >"$tmp/acl.yaml"

port=""
tport=""
start() { # variant
  port=$(free_port); tport=$(free_port)
  case $1 in
    citymesh|citymesh-tls)
      "$tmp/citymesh" serve --mqtt "127.0.0.1:$port" --mqtts "127.0.0.1:$tport" --tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key" \
        --ws off --http off --store memory --data "$tmp/cm" --log error >"$tmp/cm.log" 2>&1 & ;;
    citymesh-acl)
      "$tmp/citymesh" serve --config "$tmp/acl.yaml" --mqtt "127.0.0.1:$port" --ws off --http off --store memory --data "$tmp/cm" --log error >"$tmp/cm.log" 2>&1 & ;;
    mosquitto|mosquitto-tls)
      printf 'listener %d 127.0.0.1\nlistener %d 127.0.0.1\ncertfile %s\nkeyfile %s\nallow_anonymous true\nlog_dest none\nmax_queued_messages 10000\nuser root\n' \
        "$port" "$tport" "$tmp/server.pem" "$tmp/server.key" >"$tmp/mosquitto.conf"
      mosquitto -c "$tmp/mosquitto.conf" >"$tmp/mq.log" 2>&1 & ;;
  esac
  pid=$!
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "$1 did not start"; cat "$tmp"/*.log; return 1
}
stop() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=""; }
run() { # variant qos
  local target=(-h 127.0.0.1 -p "$port")
  case $1 in *-tls) target=(-h 127.0.0.1 -p "$tport" --cafile "$tmp/ca.pem") ;; esac
  $bench "${target[@]}" -V 311 -json -quiet -duration "${secs}s" -pattern pairs -pub 10 -qos "$2" -size 64
}

results="$tmp/results.jsonl"
: >"$results"
variants="citymesh citymesh-tls citymesh-acl mosquitto mosquitto-tls"
for r in $(seq "$rounds"); do
  for q in 0 1; do
    for v in $variants; do
      start "$v"
      if out=$(run "$v" "$q" 2>"$tmp/bench.err"); then
        echo "{\"round\":$r,\"qos\":$q,\"variant\":\"$v\",\"result\":$out}" >>"$results"
        echo "round $r qos $q $v: $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.0f msgs/s" % d["received_per_sec"])')" >&2
      else
        echo "round $r qos $q $v: FAILED $(tail -1 "$tmp/bench.err")" >&2
      fi
      stop
    done
  done
done

mkdir -p bench/results
report="bench/results/security-$(date -u +%Y%m%dT%H%M%SZ).txt"
python3 - "$results" <<'PY' | tee "$report"
import json, sys, statistics, platform, os
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(q, v):
    x = [r["result"]["received_per_sec"] for r in rows if r["qos"] == q and r["variant"] == v]
    return statistics.median(x) if x else float("nan")
print(f"machine: {platform.machine()}, {os.cpu_count()} cores; rounds: {max(r['round'] for r in rows)}; medians of received msgs/s, pairs 10x10, 64 B, MQTT 3.1.1")
print(f"{'qos':4}{'citymesh':>12}{'cm TLS':>12}{'cm 1000 ACL':>14}{'mosquitto':>12}{'mq TLS':>12}{'cm TLS/plain':>15}{'cm ACL/none':>14}{'mq TLS/plain':>15}{'cm TLS/mq TLS':>16}")
for q in (0, 1):
    c, ct, ca, m, mt = (med(q, v) for v in ("citymesh", "citymesh-tls", "citymesh-acl", "mosquitto", "mosquitto-tls"))
    print(f"{q:<4}{c:12.0f}{ct:12.0f}{ca:14.0f}{m:12.0f}{mt:12.0f}{ct/c:14.2f}x{ca/c:13.2f}x{mt/m:14.2f}x{ct/mt:15.2f}x")
PY
echo "written to $report"
