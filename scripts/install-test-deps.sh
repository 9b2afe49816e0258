#!/usr/bin/env bash
# Installs the Debian packages the tests talk to for real: redis-server (rate
# limits, caches) and chromium (the docs page's browser test). As root it uses
# apt; otherwise it says what is missing. Under CI a missing one is an error.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${need[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  exit 0
fi

echo "missing test dependencies: ${need[*]} (install them with: sudo apt-get install ${need[*]})" >&2
if [ "${CI:-}" = "true" ]; then
  exit 1
fi
echo "tests that need them will be skipped" >&2
