#!/usr/bin/env bash
# The full benchmark run (what `make bench` does), on this machine only:
#
#   1. builds the four services and the bench helper;
#   2. starts the embedded engine (FerretDB) and auth, catalog, search and the
#      gateway as SEPARATE processes on free 127.0.0.1 ports, with generated
#      secrets and the gateway's rate limits off (0 = unlimited), and seeds the
#      assignment's catalogue (data/imdb.json, plus GENERATE generated movies);
#   3. pins the services (and the baseline servers) to SERVICE_CPUS and the load
#      generator to LOAD_CPUS, so "CPU per service" and "requests per core" mean
#      something on a 2-core machine;
#   4. drives the realistic mix at RATE requests/s (open model) for DURATION,
#      then the same-run baselines (bare net/http, gRPC straight to catalog, the
#      raw driver's FindOne/InsertMany) and the engine's own curve;
#   5. reports CPU and RSS per process from /proc/<pid>/stat and status, writes
#      the JSON report and appends a section to docs/benchmarks.md.
#
# Everything stops by itself; nothing listens beyond loopback. Extra arguments
# are passed to the tool (see `benchhelper bench -h`), e.g.
#   tools/bench/run-bench.sh -smoke -md ''          # a few seconds, no docs change
#   RATE=2000 DURATION=30s tools/bench/run-bench.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

RATE="${RATE:-870}"
DURATION="${DURATION:-60s}"
WARMUP="${WARMUP:-10s}"
ENGINE_CURVE="${ENGINE_CURVE:-1000,10000,30000}"
GENERATE="${GENERATE:-0}"
SERVICE_CPUS="${SERVICE_CPUS:-0}"
LOAD_CPUS="${LOAD_CPUS:-1}"
JSON="${JSON:-${TMPDIR:-/tmp}/marquee-bench-$(date -u +%Y%m%dT%H%M%SZ).json}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "run-bench: building the bench helper" >&2
(cd tools && go build -o "$work/benchhelper" ./internal/bench/benchhelper)

args=(bench -spawn -repo "$repo"
  -rate "$RATE" -duration "$DURATION" -warmup "$WARMUP"
  -engine-curve "$ENGINE_CURVE" -generate "$GENERATE"
  -json "$JSON" -md docs/benchmarks.md)

cpus="$(nproc --all 2>/dev/null || echo 1)"
if [ "$cpus" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  args+=(-service-cpus "$SERVICE_CPUS" -load-cpus "$LOAD_CPUS")
  taskset -c "$LOAD_CPUS" "$work/benchhelper" "${args[@]}" "$@"
else
  echo "run-bench: one CPU or no taskset: running unpinned" >&2
  "$work/benchhelper" "${args[@]}" "$@"
fi
echo "run-bench: JSON report in $JSON" >&2
