#!/usr/bin/env bash
# The project's test command: formatting, vet, every test with the race
# detector (the fuzz targets' corpora included), and a short time-bound run
# of each fuzz target (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bench/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== fuzz corpora"
# Every fuzz target has its corpus checked in, so that go test below runs
# it (with the f.Add seeds) as plain, deterministic tests.
missing=0
for pair in $(grep -rHoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' . | sed -E 's|^(.*)/[^/]*_test\.go:func |\1:|' | sort -u); do
  dir="${pair%%:*}/testdata/fuzz/${pair#*:}"
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    files=$(git ls-files "$dir")
  else
    files=$(ls -A "$dir" 2>/dev/null || true)
  fi
  if [ -z "$files" ]; then
    echo "no corpus checked in for ${pair#*:}: $dir"
    missing=1
  fi
done
[ $missing = 0 ] || exit 1

echo "== go test -race"
go test -race -count=1 -timeout 15m ./...

echo "== fuzz (short)"
# Time-bound fuzzing: fails on a failing input that reproduces, warns on the
# fuzzing engine's own failures (scripts/fuzz.sh). FUZZTIME=1m for longer.
FUZZTIME="${FUZZTIME:-10s}" ./scripts/fuzz.sh
