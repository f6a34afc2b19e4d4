#!/usr/bin/env bash
# Starts a small event mesh on this machine: one core node and two edge
# nodes (campus building B1 and the Wartberg vineyard), each with its own
# store. A soil reading published at the vineyard edge arrives at a
# subscriber on the core and at a subscriber on the campus edge.
#
#   examples/mesh/run.sh          run the demonstration, then stop
#   examples/mesh/run.sh --keep   leave the three nodes running (Ctrl-C stops them)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
keep=false
[ "${1:-}" = "--keep" ] && keep=true

work="$(mktemp -d)"
bin="$work/citymesh"
go build -o "$bin" ./cmd/citymesh
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

for n in core campus vineyard; do
  "$bin" serve --config "$here/$n.yaml" --data "$work/$n" --log warn 2>"$work/$n.log" &
  pids+=($!)
done

# Wait until both edges report their upstream link up.
for http in 127.0.0.1:8902 127.0.0.1:8903; do
  for _ in $(seq 100); do
    if "$bin" mesh status --http "$http" 2>/dev/null | grep -q '^upstream .* up'; then continue 2; fi
    sleep 0.1
  done
  echo "the edge at $http did not link to the core; logs:" >&2
  cat "$work"/*.log >&2
  exit 1
done

"$bin" sub -h 127.0.0.1 -p 1901 -q 1 -t 'vineyard/#' -v -C 1 -W 10 >"$work/at-core" &
sub1=$!
"$bin" sub -h 127.0.0.1 -p 1902 -q 1 -t 'vineyard/+/device/+/soil' -v -C 1 -W 10 >"$work/at-campus" &
sub2=$!

# The subscriptions travel as interest: the campus edge tells the core, the
# core tells the vineyard edge what the core and the campus want.
interest() { "$bin" mesh status --http "$1" --json | tr -d ' \n' | grep -q "\"peer\":\"$2\"[^}]*\"interest\":[1-9]"; }
for _ in $(seq 100); do
  if interest 127.0.0.1:8901 campus-b1 && interest 127.0.0.1:8903 upstream; then break; fi
  sleep 0.1
done

"$bin" pub -h 127.0.0.1 -p 1903 -q 1 -t vineyard/wartberg/device/probe-7/soil \
  -m '{"moisture_pct":31.5,"temp_c":14.2}'

status=0
wait "$sub1" || status=$?
wait "$sub2" || status=$?
echo "at the core:          $(cat "$work/at-core")"
echo "at the campus edge:   $(cat "$work/at-campus")"
echo
"$bin" mesh status --http 127.0.0.1:8903
if [ "$status" != 0 ]; then
  echo "a subscriber did not get the reading (status $status); logs:" >&2
  cat "$work"/*.log >&2
  exit 1
fi

if $keep; then
  echo
  echo "The nodes keep running: core 127.0.0.1:1901, campus-b1 127.0.0.1:1902, vineyard-wartberg 127.0.0.1:1903"
  echo "(HTTP /api/mesh on 8901, 8902, 8903). Ctrl-C stops them."
  wait
fi
