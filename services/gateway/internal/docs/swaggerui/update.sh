#!/usr/bin/env bash
# Replaces the vendored swagger-ui-dist files with those of another version.
set -euo pipefail
version="${1:?usage: update.sh <swagger-ui-dist version>}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "swagger-ui-dist@${version}" >/dev/null && tar xzf swagger-ui-dist-*.tgz)
for f in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt; do
  cp "$work/package/$f" "$here/$f"
done
sha1sum "$work"/swagger-ui-dist-*.tgz
