#!/usr/bin/env bash
# Runs every fuzz target of the repository (each `func FuzzXxx` in a _test.go
# file) for $FUZZTIME, default 3s: one `go test -fuzz` per target, since Go
# fuzzes one target at a time. The seed corpora (f.Add and the committed
# testdata/fuzz/FuzzXxx files) also run in every plain `go test`; this adds a
# short search for new inputs. A failing input is written by Go to the
# package's testdata/fuzz/FuzzXxx/: commit it with the fix, so it stays a
# regression test. Exits non-zero if any target fails, after running them all.
#
#   scripts/fuzz.sh                   every target, 3s each
#   FUZZTIME=1m scripts/fuzz.sh       longer
#   scripts/fuzz.sh services/catalog  only targets under a path
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME="${FUZZTIME:-3s}"
roots=("${@:-.}")

mapfile -t files < <(find "${roots[@]}" -name '*_test.go' \
  -not -path '*/testdata/*' -not -path '*/node_modules/*' -not -path './.bin/*' \
  -exec grep -l '^func Fuzz[A-Za-z0-9_]*(' {} + | sort)

failed=()
count=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for file in "${files[@]}"; do
  dir=$(dirname "$file")
  for target in $(sed -n -E 's/^func (Fuzz[A-Za-z0-9_]+)\(.*/\1/p' "$file"); do
    count=$((count + 1))
    echo "==> $dir $target ($FUZZTIME)"
    for attempt in 1 2; do
      if (cd "$dir" && go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" .) 2>&1 | tee "$log"; then
        break
      fi
      # Go's fuzzing engine can miss its own deadline on a loaded machine
      # ("context deadline exceeded" with no failing input): that is not a
      # finding, so it gets one more run. A real finding names the input it
      # wrote and fails at once.
      if [ "$attempt" = 1 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
        echo "the fuzzing engine timed out without a finding; running $target again"
        continue
      fi
      failed+=("$dir $target")
      break
    done
  done
done

echo "fuzzed $count targets for $FUZZTIME each"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'failed: %s\n' "${failed[@]}" >&2
  exit 1
fi
