#!/usr/bin/env bash
# Time-bound fuzzing of every fuzz target (or of those whose name matches
# the first argument, a grep -E pattern), FUZZTIME each (default 10s).
#
#   scripts/fuzz.sh                      # every target, 10 s each
#   FUZZTIME=10m scripts/fuzz.sh FuzzJWT  # one target, longer
#
# It fails only on a crasher or a hang that reproduces: when `go test -fuzz`
# fails and writes a new entry to PKG/testdata/fuzz/FuzzX/, that entry is
# run again as a plain test (go test -run=FuzzX/NAME) and the script fails
# if it fails. A failure of the fuzzing engine itself that leaves no new
# entry (its own "context deadline exceeded" at the end of FUZZTIME, a
# worker that could not start) is retried once and then reported as a
# warning, not a failure. The seed corpora (f.Add and testdata/fuzz) are
# not run here: `go test` runs them on every run, deterministically.
#
# FUZZ_ROOT is the module to fuzz (default: this repository).
set -uo pipefail
cd "${FUZZ_ROOT:-$(dirname "$0")/..}" || exit 1

fuzztime=${FUZZTIME:-10s}
pattern=${1:-.}
failed=()
warned=()

# corpus lists the entries of a target's corpus directory.
corpus() { ls -1 "$1/testdata/fuzz/$2" 2>/dev/null | sort; }

# fuzz_once runs one time-bound fuzzing of target in pkg; it returns 0 when
# it passed, 1 when it found a failure that reproduces, and 2 when it failed
# without leaving an entry that reproduces.
fuzz_once() {
  local pkg=$1 target=$2 log before after entry status=2
  log=$(mktemp)
  before=$(corpus "$pkg" "$target")
  if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" >"$log" 2>&1; then
    tail -n 1 "$log"
    rm -f "$log"
    return 0
  fi
  after=$(corpus "$pkg" "$target")
  for entry in $(comm -13 <(echo "$before") <(echo "$after")); do
    echo "$pkg $target: the fuzzer wrote testdata/fuzz/$target/$entry; running it as a plain test"
    if go test -count=1 -timeout=120s -run="^${target}/${entry}\$" "$pkg"; then
      echo "warning: $pkg $target: testdata/fuzz/$target/$entry passes as a plain test (not kept)"
      rm -f "$pkg/testdata/fuzz/$target/$entry"
    else
      cat "$log"
      echo "FAIL: $pkg $target: reproduce with: go test -run='${target}/${entry}' $pkg"
      status=1
    fi
  done
  if [ $status = 2 ]; then
    echo "$pkg $target: go test -fuzz failed without a failing input:"
    tail -n 20 "$log"
  fi
  rm -f "$log"
  return $status
}

# Every fuzz target of every package ("dir:FuzzName" pairs).
pairs=$(grep -rHoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' . | sed -E 's|^(.*)/[^/]*_test\.go:func |\1:|' | sort -u)
for pair in $pairs; do
  pkg=${pair%%:*}
  target=${pair#*:}
  echo "$target" | grep -qE "$pattern" || continue
  echo "-- $pkg $target ($fuzztime)"
  fuzz_once "$pkg" "$target"
  case $? in
  0) ;;
  1) failed+=("$pkg $target") ;;
  *)
    echo "$pkg $target: retrying once"
    fuzz_once "$pkg" "$target"
    case $? in
    0) warned+=("$pkg $target (the fuzzing engine failed once without a failing input; the retry passed)") ;;
    1) failed+=("$pkg $target") ;;
    *) warned+=("$pkg $target (the fuzzing engine failed twice without a failing input)") ;;
    esac
    ;;
  esac
done

for w in "${warned[@]}"; do echo "warning: $w"; done
if [ ${#failed[@]} -gt 0 ]; then
  for f in "${failed[@]}"; do echo "FAIL: $f"; done
  exit 1
fi
echo "fuzz: no failing input found"
