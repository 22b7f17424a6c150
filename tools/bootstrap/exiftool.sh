#!/usr/bin/env bash
# Install ExifTool (pure-Perl distribution from the npm package exiftool-vendored.pl)
# into <repo>/.tools/exiftool. Idempotent: does nothing when the pinned version is present.
# darkroom_imaging.exiftool finds it at
# .tools/exiftool/node_modules/exiftool-vendored.pl/bin/exiftool (needs perl on PATH).
set -euo pipefail

EXIFTOOL_NPM_VERSION="13.59.3"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PREFIX="$ROOT/.tools/exiftool"
BIN="$PREFIX/node_modules/exiftool-vendored.pl/bin/exiftool"
STAMP="$PREFIX/.version"

command -v perl >/dev/null || { echo "exiftool.sh: perl is required" >&2; exit 1; }

if [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$EXIFTOOL_NPM_VERSION" ]]; then
  echo "exiftool $("$BIN" -ver) already installed at $BIN"
  exit 0
fi

mkdir -p "$PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund --no-save --loglevel=error \
  "exiftool-vendored.pl@$EXIFTOOL_NPM_VERSION"
chmod +x "$BIN"
echo "$EXIFTOOL_NPM_VERSION" > "$STAMP"
echo "exiftool $("$BIN" -ver) installed at $BIN"
