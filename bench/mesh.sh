#!/usr/bin/env bash
# The event mesh's benchmarks on this machine, over loopback: one core node
# and two edge nodes (`citymesh serve` with a mesh section, each with its own
# store under a temporary directory, on ports picked here), driven by
# `citymesh bench`. Scenarios:
#
#   throughput   QoS 0 and QoS 1 pairs, 10 publishers and 10 subscribers,
#                64 B, as fast as possible: publishers at an edge and
#                subscribers at the core (one link) against every client on
#                the core (one node), interleaved. Two references on one
#                node show what a link is: all 10 publishers into a single
#                subscriber (fan-in), and for QoS 1 into a single persistent
#                subscriber, since a link is one durable session that carries
#                all the traffic crossing it.
#   latency      10 publishers x 1,000 msg/s and 1 publisher x 1,000 msg/s,
#                QoS 0 and 1, publishers at one edge and subscribers on the
#                same edge (0 hops), at the core (1 hop: edge, core) and on
#                the other edge (2 hops: edge, core, edge).
#   propagation  a new subscription until a message published at the other
#                edge reaches it: at the core (one link) and at the other
#                edge (two links), REPS times each, in a quiet mesh.
#   sustained    the highest steady rate (10 publishers pacing themselves,
#                QoS 0 and 1, pairs, 64 B) that one node and one link carry
#                without falling behind: nothing left undelivered after the
#                grace period and at least 99% of the offered rate received.
#                The rate per publisher doubles from 5,000 msg/s until a run
#                falls behind, then is bisected STEPS times.
#   drain        with the core stopped, the edge takes BACKLOG QoS 1 messages
#                for a persistent subscriber at the core into its link queue;
#                then the core starts, the subscriber connects, and the
#                script watches the edge's queue (GET /api/mesh) drain.
#
# Every throughput and sustained run also records the CPU time each node
# used (from /proc), reported as microseconds of node CPU per message.
#
# Usage: bench/mesh.sh [-r ROUNDS] [-d SECONDS] [-l SECONDS] [-n BACKLOG] [-p REPS] [-b STEPS] [-q "QOS ..."] [-s "scenario ..."]
#   -r  rounds of throughput and latency; medians are reported (default 3)
#   -d  seconds each throughput run publishes (default 5)
#   -l  seconds each latency run publishes (default 10)
#   -n  messages of the drain backlog (default 1000000)
#   -p  subscriptions per path in the propagation scenario (default 20)
#   -b  bisection steps of the sustained scenario (default 4)
#   -q  the QoS levels of the throughput, latency and sustained scenarios (default "0 1")
#   -s  scenarios to run (default "throughput latency propagation sustained drain")
# CITYMESH_BIN=path runs that citymesh binary instead of building this tree's
# (to compare builds on the same machine in one sitting).
# The report goes to bench/results/mesh-TIMESTAMP.txt. Needs go and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
secs=5
lsecs=10
backlog=1000000
reps=20
steps=4
scenarios="throughput latency propagation sustained drain"
qoss="0 1"
while getopts "r:d:l:n:p:b:q:s:" o; do
  case $o in
    r) rounds=$OPTARG ;;
    d) secs=$OPTARG ;;
    l) lsecs=$OPTARG ;;
    n) backlog=$OPTARG ;;
    p) reps=$OPTARG ;;
    b) steps=$OPTARG ;;
    q) qoss=$OPTARG ;;
    s) scenarios=$OPTARG ;;
    *) echo "usage: $0 [-r rounds] [-d seconds] [-l seconds] [-n backlog] [-p reps] [-b steps] [-q qos] [-s scenarios]"; exit 2 ;;
  esac
done
want() { [[ " $scenarios " == *" $1 "* ]]; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

tmp=$(mktemp -d)
declare -A pid mqtt http conf # by node name; pid only while the node runs
bgpid=""                      # a background bench (the drain's subscriber)
cleanup() {
  for n in "${!pid[@]}"; do kill -9 "${pid[$n]}" 2>/dev/null || true; done
  for n in "${!pid[@]}"; do wait "${pid[$n]}" 2>/dev/null || true; done
  if [ -n "$bgpid" ]; then kill -9 "$bgpid" 2>/dev/null || true; wait "$bgpid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${CITYMESH_BIN:-}" ]; then
  cp "$CITYMESH_BIN" "$tmp/citymesh"
else
  go build -o "$tmp/citymesh" ./cmd/citymesh
fi
cm="$tmp/citymesh"
results="$tmp/results.jsonl"
: >"$results"

# free_port prints a loopback TCP port that is free right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# meshctl waits for, or watches, the links of a node through GET /api/mesh,
# and prints progress lines.
cat >"$tmp/meshctl.py" <<'PY'
import json, sys, time, urllib.request

def links(http):
    with urllib.request.urlopen(f"http://{http}/api/mesh", timeout=2) as r:
        return {l["peer"]: l for l in json.load(r)["links"]}

def wait(http, peer, cond, timeout):
    """Wait until link peer of the node at http is up, down, idle (up with
    nothing queued or inflight) or has some interest."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            l = links(http).get(peer)
        except OSError:
            l = None
        if l is not None:
            idle = l["queued"] == 0 and l["inflight"] == 0
            if {"up": l["up"], "down": not l["up"], "idle": l["up"] and idle, "interest": l["up"] and l["interest"] > 0}[cond]:
                return
        time.sleep(0.01)
    sys.exit(f"{http}: link {peer} not {cond} after {timeout} s")

def watch(http, peer, timeout):
    """Print when link peer came up and when its queue was empty again."""
    end = time.time() + timeout
    up = None
    while time.time() < end:
        try:
            l = links(http)[peer]
        except (OSError, KeyError):
            time.sleep(0.01)
            continue
        now = time.time()
        if up is None and l["up"]:
            up = now
        if up is not None and l["queued"] == 0 and l["inflight"] == 0:
            print(json.dumps({"up": up, "empty": now, "forwarded": l["forwarded"]}))
            return
        time.sleep(0.01)
    sys.exit(f"{http}: link {peer} did not drain within {timeout} s")

def show(out, s, v, q):
    """Print one bench result as a progress line."""
    d = json.loads(out)
    print(f"{s:12} {v:18} qos {q}  recv {d['received_per_sec']:10.0f}/s  lost {d['lost']:8d}  "
          f"p50 {d['latency_p50_us']:8.0f} us  p99 {d['latency_p99_us']:8.0f} us  routes {1e3 * d.get('propagate_seconds', 0):6.1f} ms")

def keptup(out, rate):
    """Exit 0 if a paced run kept up: nothing undelivered after the grace
    period and at least 99% of the offered rate received."""
    d = json.loads(out)
    offered = d["publishers"] * float(rate)
    sys.exit(0 if d["lost"] == 0 and d["errors"] == 0 and min(d["sent_per_sec"], d["received_per_sec"]) >= 0.99 * offered else 1)

cmd = sys.argv[1]
if cmd == "keptup":
    keptup(sys.argv[2], sys.argv[3])
elif cmd == "show":
    show(*sys.argv[2:6])
elif cmd == "wait":
    wait(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
elif cmd == "watch":
    watch(sys.argv[2], sys.argv[3], float(sys.argv[4]))
elif cmd == "queued":
    print(links(sys.argv[2])[sys.argv[3]]["queued"])
PY
meshctl() { python3 "$tmp/meshctl.py" "$@"; }

# configure name role [extra YAML]: writes the node's configuration; an edge
# attaches to the node "core".
configure() {
  local name=$1 role=$2 extra=${3:-}
  mqtt[$name]=$(free_port)
  http[$name]=$(free_port)
  conf[$name]="$tmp/$name.yaml"
  {
    printf 'mqtt: 127.0.0.1:%s\nws: "off"\nhttp: 127.0.0.1:%s\nlog: warn\n' "${mqtt[$name]}" "${http[$name]}"
    if [ -n "$extra" ]; then printf '%s\n' "$extra"; fi
    printf 'mesh:\n  node: %s\n  role: %s\n' "$name" "$role"
    if [ "$role" = core ]; then
      printf '  accept:\n    edges: ["*"]\n'
    else
      printf '  upstream:\n    - {name: core, url: "mqtt://127.0.0.1:%s"}\n' "${mqtt[core]}"
    fi
  } >"${conf[$name]}"
}

# start name: starts the node on its configuration and data directory and
# waits until it accepts MQTT connections.
start() {
  local name=$1
  "$cm" serve --config "${conf[$name]}" --data "$tmp/data-$name" >>"$tmp/$name.log" 2>&1 &
  pid[$name]=$!
  for _ in $(seq 400); do
    (exec 3<>"/dev/tcp/127.0.0.1/${mqtt[$name]}") 2>/dev/null && return 0
    sleep 0.025
  done
  echo "node $name did not start:"; cat "$tmp/$name.log"; exit 1
}

# stop name: stops the node (SIGTERM) and waits for it.
stop() {
  local name=$1
  kill -TERM "${pid[$name]}" 2>/dev/null || true
  wait "${pid[$name]}" 2>/dev/null || true
  unset "pid[$name]"
}

# bench scenario variant qos round args...: one citymesh bench run, its JSON
# result appended to the results.
# The nodes' CPU time during the run (user and system, from /proc) goes with
# it, so that the report can say what a message costs each node.
bench() {
  local s=$1 v=$2 q=$3 r=$4
  shift 4
  local out before after
  before=$(node_cpu)
  if out=$(timeout 300 "$cm" bench -json -quiet "$@" 2>"$tmp/bench.err"); then
    after=$(node_cpu)
    echo "{\"scenario\":\"$s\",\"variant\":\"$v\",\"qos\":$q,\"round\":$r,\"cpu_before\":{$before},\"cpu_after\":{$after},\"result\":$out}" >>"$results"
    last="$out"
    meshctl show "$out" "$s" "$v" "$q" >&2
  else
    last=""
    echo "$s $v qos $q: FAILED: $(tail -1 "$tmp/bench.err")" >&2
  fi
}

# node_cpu prints "name": seconds, ... of CPU time used so far by each
# running node (fields 14 and 15 of /proc/PID/stat, in clock ticks).
node_cpu() {
  local n sep=""
  for n in "${!pid[@]}"; do
    [ -r "/proc/${pid[$n]}/stat" ] || continue
    printf '%s"%s":%s' "$sep" "$n" "$(awk -v hz="$hz" '{printf "%.2f", ($14 + $15) / hz}' "/proc/${pid[$n]}/stat")"
    sep=","
  done
}
hz=$(getconf CLK_TCK)
last="" # the JSON of the last bench run, "" if it failed

# settle: waits until the links of edge-a and edge-b have nothing queued or
# inflight, so that one run's backlog does not slow the next.
settle() {
  for n in edge-a edge-b; do
    [ -n "${pid[$n]:-}" ] && meshctl wait "127.0.0.1:${http[$n]}" upstream idle 300
  done
  meshctl wait "127.0.0.1:${http[core]}" edge-a idle 300
}

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
if want throughput || want latency || want propagation || want sustained; then
  configure core core
  configure edge-a edge
  configure edge-b edge
  for n in core edge-a edge-b; do start "$n"; done
  for n in edge-a edge-b; do meshctl wait "127.0.0.1:${http[$n]}" upstream up 30; done
  h=(-h 127.0.0.1)
  for r in $(seq "$rounds"); do
    if want throughput; then
      for q in $qoss; do
        common=("${h[@]}" -pattern pairs -pub 10 -qos "$q" -size 64 -duration "${secs}s")
        settle
        bench throughput one-node "$q" "$r" "${common[@]}" -p "${mqtt[core]}"
        settle
        bench throughput one-link "$q" "$r" "${common[@]}" -p "${mqtt[edge-a]}" -sub-p "${mqtt[core]}"
        settle
        bench throughput fanin-one-node "$q" "$r" "${h[@]}" -pattern fanin -pub 10 -qos "$q" -size 64 -duration "${secs}s" -p "${mqtt[core]}"
        if [ "$q" = 1 ]; then
          settle
          bench throughput fanin-persistent "$q" "$r" "${h[@]}" -pattern fanin -pub 10 -qos 1 -size 64 -duration "${secs}s" -p "${mqtt[core]}" -persistent
        fi
      done
    fi
    if want latency; then
      for q in $qoss; do
        for np in 10 1; do
          common=("${h[@]}" -pattern pairs -pub "$np" -qos "$q" -size 64 -rate 1000 -duration "${lsecs}s" -p "${mqtt[edge-a]}")
          settle
          bench "latency-$np" 0-hops "$q" "$r" "${common[@]}"
          settle
          bench "latency-$np" 1-hop "$q" "$r" "${common[@]}" -sub-p "${mqtt[core]}"
          settle
          bench "latency-$np" 2-hops "$q" "$r" "${common[@]}" -sub-p "${mqtt[edge-b]}"
        done
      done
    fi
  done
  if want propagation; then
    # One subscriber on a topic of its own, one publisher at edge-a; bench
    # probes once a millisecond from the SUBACK until the probe arrives. The
    # pause lets the batch windows that the previous run's unsubscribe
    # opened close first.
    for i in $(seq "$reps"); do
      for target in core edge-b; do
        sleep 0.2
        bench propagation "edge-a-to-$target" 0 "$i" "${h[@]}" -pattern custom -pub 1 -sub 1 -count 1 -topics 1 -qos 0 -grace 100ms \
          -topic "bench/propagation/$target/$i" -sub-topic "bench/propagation/$target/$i" -p "${mqtt[edge-a]}" -sub-p "${mqtt[$target]}"
      done
    done
  fi
  if want sustained; then
    for q in $qoss; do
      for v in one-node one-link; do
        args=("${h[@]}" -pattern pairs -pub 10 -qos "$q" -size 64 -duration "${secs}s" -p "${mqtt[edge-a]}" -sub-p "${mqtt[core]}")
        [ "$v" = one-node ] && args=("${h[@]}" -pattern pairs -pub 10 -qos "$q" -size 64 -duration "${secs}s" -p "${mqtt[core]}")
        ok=0 bad=0 rate=5000
        # try_rate: one paced run at $rate; it moves ok or bad to it.
        try_rate() {
          settle
          bench sustained "$v@$rate" "$q" 1 "${args[@]}" -rate "$rate"
          if [ -n "$last" ] && meshctl keptup "$last" "$rate"; then ok=$rate; else bad=$rate; fi
        }
        # Double until a run falls behind, then bisect.
        while try_rate && [ "$bad" = 0 ] && [ $((rate * 2)) -le 1000000 ]; do
          rate=$((rate * 2))
        done
        for _ in $(seq "$steps"); do
          [ "$bad" = 0 ] && break
          rate=$(((ok + bad) / 2))
          try_rate
        done
        echo "{\"scenario\":\"sustained-max\",\"variant\":\"$v\",\"qos\":$q,\"round\":1,\"result\":{\"rate\":$ok,\"failed_at\":$bad}}" >>"$results"
      done
    done
  fi
  for n in edge-b edge-a core; do stop "$n"; done
fi

drain="$tmp/drain.json"
if want drain; then
  # The core keeps the subscriber's persistent session and whatever reaches
  # it before the subscriber is back; the edge's link queue is bounded by
  # mesh.link_max_messages (10,000,000 by default).
  configure core core "$(printf 'limits:\n  max_stored_messages: %d\n  max_stored_bytes: 4294967296\n' $((backlog + 1000)))"
  configure edge-d edge
  start core
  start edge-d
  meshctl wait "127.0.0.1:${http[edge-d]}" upstream up 30
  # Session backlog-0 at the core, persistent, subscribed to bench/backlog/0
  # at QoS 1; its interest reaches the edge.
  timeout 60 "$cm" bench -h 127.0.0.1 -p "${mqtt[core]}" -V 5 -backlog 1 -backlog-messages 0 -json -quiet >/dev/null
  meshctl wait "127.0.0.1:${http[edge-d]}" upstream interest 30
  stop core
  meshctl wait "127.0.0.1:${http[edge-d]}" upstream down 30
  # One publisher, so that message j of the backlog carries sequence number
  # j and the drain can check order.
  fill=$(timeout 900 "$cm" bench -h 127.0.0.1 -p "${mqtt[edge-d]}" -V 5 -pattern custom -pub 1 -sub 0 -qos 1 -size 64 \
    -count "$backlog" -topics 1 -topic bench/backlog/0 -sub-topic bench/backlog/0 -grace 0s -json -quiet)
  queued=$(meshctl queued "127.0.0.1:${http[edge-d]}" upstream)
  echo "drain: $queued messages queued at the edge for the core" >&2
  t_core=$(date +%s.%N)
  start core
  t_sub=$(date +%s.%N)
  timeout 900 "$cm" bench -h 127.0.0.1 -p "${mqtt[core]}" -V 5 -drain 1 -backlog-messages "$backlog" -grace 60s -json -quiet >"$tmp/drain-sub.json" &
  bgpid=$!
  watch=$(meshctl watch "127.0.0.1:${http[edge-d]}" upstream 900)
  wait "$bgpid"
  bgpid=""
  python3 - "$fill" "$queued" "$t_core" "$t_sub" "$watch" "$(cat "$tmp/drain-sub.json")" "$backlog" >"$drain" <<'PY'
import json, sys
fill, queued, t_core, t_sub, watch, sub, n = sys.argv[1:]
f, w, s = json.loads(fill), json.loads(watch), json.loads(sub)
print(json.dumps({"backlog": int(n), "fill_per_sec": f["sent_per_sec"], "fill_errors": f["errors"], "queued": int(queued),
    "reconnect_s": w["up"] - float(t_core), "edge_drain_s": w["empty"] - w["up"],
    "sub_last_after_up_s": float(t_sub) + s["seconds"] - w["up"], "sub": s}))
PY
  stop edge-d
  # The reference: the same backlog in one persistent session on one node
  # (the core, now alone), queued while its subscriber was away and drained
  # by it: the store-and-forward of one durable session without a link.
  rfill=$(timeout 900 "$cm" bench -h 127.0.0.1 -p "${mqtt[core]}" -V 5 -backlog 1 -backlog-messages "$backlog" -pub 1 -json -quiet)
  rdrain=$(timeout 900 "$cm" bench -h 127.0.0.1 -p "${mqtt[core]}" -V 5 -drain 1 -backlog-messages "$backlog" -grace 10s -json -quiet)
  stop core
  python3 - "$drain" "$rfill" "$rdrain" <<'PY'
import json, sys
path, fill, drain = sys.argv[1:]
d = json.load(open(path))
d["ref_fill_per_sec"], d["ref"] = json.loads(fill)["sent_per_sec"], json.loads(drain)
json.dump(d, open(path, "w"))
PY
fi

mkdir -p bench/results
report="bench/results/mesh-$(date -u +%Y%m%dT%H%M%SZ).txt"
python3 - "$results" "$drain" "$started" "$rounds" "$secs" "$lsecs" "$backlog" "$reps" "$scenarios" >"$report" <<'PY'
import json, os, platform, statistics, subprocess, sys
results, drain, started, rounds, secs, lsecs, backlog, reps, scenarios = sys.argv[1:]
rows = [json.loads(l) for l in open(results)]
def cpu():
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            return l.split(":", 1)[1].strip()
    return platform.processor()
go = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
rev = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip() or "?"
print(f"bench/mesh.sh -r {rounds} -d {secs} -l {lsecs} -n {backlog} -p {reps} -s \"{scenarios}\"  (started {started})")
print(f"citymesh {rev}; machine: {os.cpu_count()} CPUs ({cpu()}), {platform.system()} {platform.release()}, {go}; every process on this machine, over loopback")
def pick(s, v, q, key):
    vals = [r["result"][key] for r in rows if r["scenario"] == s and r["variant"] == v and r["qos"] == q]
    return statistics.median(vals) if vals else None
def fmt(x, d=0):
    return "-" if x is None else f"{x:,.{d}f}"
def ratio(a, b):
    return "-" if not a or not b else f"{a / b:.2f}x"
if any(r["scenario"] == "throughput" for r in rows):
    print("\nthroughput: pairs 10x10, 64 B, received msgs/s (median of rounds; lost % in parentheses)")
    print(f"{'qos':>3}  {'one node':>20}  {'edge -> core (link)':>20}  {'link / one node':>15}  {'fan-in, one node':>20}  {'fan-in, persistent':>20}  {'link / fan-in':>13}")
    for q in (0, 1):
        cells, vals = [], {}
        for v in ("one-node", "one-link", "fanin-one-node", "fanin-persistent"):
            rec, lost, exp = pick("throughput", v, q, "received_per_sec"), pick("throughput", v, q, "lost"), pick("throughput", v, q, "expected")
            vals[v] = rec
            cells.append("-" if rec is None else f"{fmt(rec)} ({100 * lost / max(exp, 1):.1f}%)")
        ref = vals["fanin-persistent"] if q == 1 else vals["fanin-one-node"]
        print(f"{q:>3}  {cells[0]:>20}  {cells[1]:>20}  {ratio(vals['one-link'], vals['one-node']):>15}  {cells[2]:>20}  {cells[3]:>20}  {ratio(vals['one-link'], ref):>13}")
    print("lost: not received by the end of the 2 s grace period; across the link at QoS 1 these are still in the")
    print("edge's durable link queue then (acknowledged to the publishers, forwarded later). link / fan-in compares")
    print("the link with one node's fan-in into one session (QoS 0) and into one persistent session (QoS 1).")
def cpu_per_msg(r):
    """Node CPU per received message, µs, by node, for one run."""
    n = max(r["result"]["received"], 1)
    return {k: 1e6 * (r["cpu_after"][k] - r["cpu_before"].get(k, 0)) / n for k in r.get("cpu_after", {})}
def cpu_cell(rs, nodes):
    """The median node CPU per message of runs rs, for the nodes a message crosses."""
    if not rs:
        return "-"
    per = [cpu_per_msg(r) for r in rs]
    parts = [f"{k} {statistics.median(p.get(k, 0) for p in per):.2f}" for k in nodes]
    total = statistics.median(sum(p.get(k, 0) for k in nodes) for p in per)
    return " + ".join(parts) + (f" = {total:.2f}" if len(nodes) > 1 else "")
if any(r["scenario"] == "throughput" for r in rows):
    print("\nnode CPU per received message in the throughput runs, µs (user + system, median of rounds)")
    for q in (0, 1):
        for v, nodes in (("one-node", ["core"]), ("one-link", ["edge-a", "core"])):
            rs = [r for r in rows if r["scenario"] == "throughput" and r["variant"] == v and r["qos"] == q]
            print(f"  qos {q}  {v:9}  {cpu_cell(rs, nodes)}")
best = {(r["variant"], r["qos"]): r["result"] for r in rows if r["scenario"] == "sustained-max"}
if best:
    print("\nsustained: the highest paced rate carried without falling behind (10x10 pairs, 64 B; nothing")
    print("undelivered after the grace period, >= 99% of the offered rate sent and received), msgs/s in all")
    print(f"{'qos':>3}  {'one node':>10}  {'one link':>10}  {'link / one node':>15}  {'node CPU µs/msg, one node':>26}  {'node CPU µs/msg, link':>30}")
    for q in (0, 1):
        a, b = best.get(("one-node", q)), best.get(("one-link", q))
        if not a or not b:
            continue
        ra, rb = 10 * a["rate"], 10 * b["rate"]
        ca = cpu_cell([r for r in rows if r["scenario"] == "sustained" and r["variant"] == f"one-node@{a['rate']}" and r["qos"] == q], ["core"])
        cb = cpu_cell([r for r in rows if r["scenario"] == "sustained" and r["variant"] == f"one-link@{b['rate']}" and r["qos"] == q], ["edge-a", "core"])
        print(f"{q:>3}  {ra:>10,}  {rb:>10,}  {ratio(rb, ra):>15}  {ca:>26}  {cb:>30}")
    print("(a rate that failed lies within one bisection step above each figure)")
for np in (10, 1):
    sc = f"latency-{np}"
    if not any(r["scenario"] == sc for r in rows):
        continue
    print(f"\nlatency: {np} publisher{'s' if np > 1 else ''} x 1,000 msg/s, 64 B, publishers at edge-a (median of rounds, µs)")
    print(f"{'qos':>3}  {'hops':>6}  {'p50':>7}  {'p99':>7}  {'max':>8}  {'lost':>5}  {'p50 added':>9}  {'p99 added':>9}  {'p99 per hop':>11}")
    for q in (0, 1):
        base50, base99 = pick(sc, "0-hops", q, "latency_p50_us"), pick(sc, "0-hops", q, "latency_p99_us")
        for hops, v in enumerate(("0-hops", "1-hop", "2-hops")):
            p50, p99, mx, lost = (pick(sc, v, q, k) for k in ("latency_p50_us", "latency_p99_us", "latency_max_us", "lost"))
            if p50 is None:
                continue
            add50 = p50 - base50 if hops else None
            add99 = p99 - base99 if hops else None
            per = add99 / hops if hops else None
            print(f"{q:>3}  {v:>6}  {fmt(p50):>7}  {fmt(p99):>7}  {fmt(mx):>8}  {fmt(lost):>5}  {fmt(add50):>9}  {fmt(add99):>9}  {fmt(per):>11}")
prop = [r for r in rows if r["scenario"] == "propagation"]
if prop:
    print("\npropagation: from the SUBACK of a new subscription until a probe published at edge-a reaches it (ms)")
    print(f"{'path':>28}  {'n':>3}  {'median':>7}  {'min':>7}  {'max':>7}")
    for v, label in (("edge-a-to-core", "edge-a -> core (1 link)"), ("edge-a-to-edge-b", "edge-a -> core -> edge-b")):
        t = [1e3 * r["result"].get("propagate_seconds", 0) for r in prop if r["variant"] == v]
        if t:
            print(f"{label:>28}  {len(t):>3}  {statistics.median(t):7.1f}  {min(t):7.1f}  {max(t):7.1f}")
if os.path.exists(drain) and os.path.getsize(drain) > 0:
    d = json.load(open(drain))
    s = d["sub"]
    print(f"\ndrain: {d['backlog']:,} QoS 1 messages of 64 B queued at the edge while the core was down ({d['queued']:,} in the link queue)")
    print(f"  fill at the edge (1 publisher, PUBACK once stored): {d['fill_per_sec']:,.0f} msgs/s, errors {d['fill_errors']}")
    print(f"  core started -> link up (the edge's reconnect back-off): {d['reconnect_s']:.2f} s")
    print(f"  link up -> edge queue empty: {d['edge_drain_s']:.2f} s = {d['queued'] / d['edge_drain_s']:,.0f} msgs/s")
    print(f"  link up -> last message at the subscriber: {d['sub_last_after_up_s']:.2f} s = {s['received'] / d['sub_last_after_up_s']:,.0f} msgs/s")
    print(f"  subscriber: received {s['received']:,} of {s['expected']:,}: lost {s['lost']}, duplicates {s['duplicates']}, out of order {s['out_of_order']}")
    if "ref" in d:
        ref = d["ref"]
        print(f"  reference, one node: the same backlog queued for one offline persistent session at {d['ref_fill_per_sec']:,.0f} msgs/s,")
        print(f"    drained by its subscriber in {ref['seconds']:.2f} s = {ref['received_per_sec']:,.0f} msgs/s (lost {ref['lost']}, duplicates {ref['duplicates']}, out of order {ref['out_of_order']});")
        print(f"    the link's drain is {d['queued'] / d['edge_drain_s'] / ref['received_per_sec']:.2f}x of it")
PY
cat "$report"
echo "written to $report"
