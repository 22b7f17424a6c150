#!/usr/bin/env bash
# Pre-fetch the jars of S3Proxy, the local S3-compatible server
# (tools/jars/s3proxy/pom.xml, org.gaul:s3proxy from Maven Central) into
# .tools/jars/s3proxy/. Idempotent: ensure_jars skips Maven while the pom's hash
# matches the recorded one. Needs java 17+ and mvn; run after `uv sync`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

command -v java >/dev/null || { echo "s3proxy.sh: java (17+) is required" >&2; exit 1; }
command -v mvn >/dev/null || { echo "s3proxy.sh: mvn is required to fetch the S3Proxy jars" >&2; exit 1; }

DARKROOM_HOME="$root" "$root/.venv/bin/python" - <<'PY'
from darkroom_dev.local.jars import ensure_jars, java_classpath

folder = ensure_jars("s3proxy")
jars = java_classpath(folder).split(":")
main = [j for j in jars if j.rsplit("/", 1)[-1].startswith("s3proxy-")]
if not main:
    raise SystemExit(f"s3proxy.sh: no s3proxy jar in {folder}")
print(f"s3proxy jars ready: {main[0].rsplit('/', 1)[-1]} + {len(jars) - 1} dependencies in {folder}")
PY
