#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a bounded time each, and
# prints a table of executions, new interesting inputs and the result.
#
#   FUZZTIME=10s          how long each target runs (go test -fuzztime)
#   FUZZJOBS=1            targets run at once; with more than one, each gets
#                         one fuzzing worker (-parallel=1)
#   FUZZLOGS=DIR          keep each target's output in DIR/<pkg>.<target>.log
#   FUZZMINIMIZETIME=10s  how long a new input may be minimised
#   ./scripts/fuzz.sh [REGEXP]   only the targets whose name matches
#
# Targets are found by looking for "func Fuzz" in the test files, so a new
# one is picked up without touching this script. The seed corpora (f.Add
# and testdata/fuzz/<target>/) also run as plain tests with go test; this
# script adds the fuzzing. A crash writes its input to
# <pkg>/testdata/fuzz/<target>/ and fails the script: check that file in
# with the fix, as a regression seed. A failure that writes no input and
# says only "context deadline exceeded" is Go's own race (see run_one).
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-10s}
jobs=${FUZZJOBS:-1}
minimize=${FUZZMINIMIZETIME:-10s}
filter=${1:-.}
logs=${FUZZLOGS:-$(mktemp -d)}
mkdir -p "$logs"

# "pkgdir target" per line, e.g. "./server FuzzAPI".
mapfile -t targets < <(
  grep -rHo --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' . |
    grep -v -e '/testdata/' -e '/vendor/' |
    sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]+).*#\1 \2#' |
    awk -v re="$filter" '$2 ~ re' | sort -u
)
if [ ${#targets[@]} -eq 0 ]; then
  echo "no fuzz targets match $filter" >&2
  exit 1
fi
echo "== ${#targets[@]} fuzz targets, $fuzztime each, $jobs at a time (logs in $logs)"

parallel=()
if [ "$jobs" -gt 1 ]; then parallel=(-parallel=1); fi

run_one() { # pkgdir target
  local dir=$1 name=$2
  local log="$logs/$(echo "${dir#./}" | tr / .).$name.log"
  [ "$dir" = "." ] && log="$logs/root.$name.log"
  local corpus="$dir/testdata/fuzz/$name" before after
  before=$(ls "$corpus" 2>/dev/null || true)
  if go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" \
    "${parallel[@]}" "$dir" >"$log" 2>&1; then
    echo ok >>"$log.result"
    return
  fi
  after=$(ls "$corpus" 2>/dev/null || true)
  # Go 1.26's fuzzing coordinator can report its own -fuzztime deadline as
  # a failure ("context deadline exceeded", golang/go#75804, fixed in Go
  # 1.27). That failure writes no input; a real one always does.
  if [ "$before" = "$after" ] && [ "$(sed -n '/^--- FAIL/{n;p;q}' "$log" | tr -d ' \t')" = contextdeadlineexceeded ]; then
    echo "ok (Go's fuzztime race, no input)" >>"$log.result"
  else
    echo FAIL >>"$log.result"
  fi
}

for t in "${targets[@]}"; do
  # shellcheck disable=SC2086
  run_one $t &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
done
wait

status=0
printf '%-42s %-22s %14s %12s  %s\n' package target execs interesting result
for t in "${targets[@]}"; do
  set -- $t
  dir=$1 name=$2
  log="$logs/$(echo "${dir#./}" | tr / .).$name.log"
  [ "$dir" = "." ] && log="$logs/root.$name.log"
  result=$(cat "$log.result" 2>/dev/null || echo "not run")
  last=$(grep -E 'execs: [0-9]+' "$log" | tail -n1 || true)
  execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
  interesting=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
  pkg=github.com/sessiond/sessiond${dir#.}
  if [ -z "$execs" ]; then # the time went to replaying the cached corpus
    execs=0 interesting=0
  fi
  printf '%-42s %-22s %14s %12s  %s\n' "$pkg" "$name" "$execs" "$interesting" "$result"
  if [[ $result != ok* ]]; then
    status=1
    sed -n '/--- FAIL/,$p' "$log" | head -n 30
  fi
done
exit $status
