#!/usr/bin/env bash
# Install the sharp baseline used by `make bench` (bench/engine_bench.py).
# sharp's npm package pulls prebuilt libvips through its @img/sharp-* optional
# packages, so only Node/npm and the npm registry are needed. Idempotent: a
# second run with the same lockfile/version is a no-op.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="$here/bench/sharp"
stamp="$dir/node_modules/.darkroom-installed"
want="$(sha256sum "$dir/package.json" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && node -e "require('$dir/node_modules/sharp')" 2>/dev/null; then
  echo "bench: sharp already installed in $dir/node_modules"
  exit 0
fi
cd "$dir"
npm install --no-audit --no-fund --omit=dev --loglevel=error
node -e "const s=require('$dir/node_modules/sharp'); console.log('bench: sharp', require('$dir/node_modules/sharp/package.json').version, 'libvips', s.versions.vips)"
echo "$want" > "$stamp"
