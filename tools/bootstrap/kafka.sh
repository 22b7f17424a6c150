#!/usr/bin/env bash
# Pre-fetch the jars of the local Kafka broker (tools/jars/kafka/pom.xml) into
# .tools/jars/kafka/. Idempotent: ensure_jars skips Maven while the pom's hash
# matches the recorded one. Needs java 17+ and mvn; run after `uv sync`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

command -v java >/dev/null || { echo "kafka.sh: java (17+) is required" >&2; exit 1; }
command -v mvn >/dev/null || { echo "kafka.sh: mvn is required to fetch the Kafka jars" >&2; exit 1; }

DARKROOM_HOME="$root" "$root/.venv/bin/python" - <<'PY'
from darkroom_dev.local.jars import ensure_jars, java_classpath

folder = ensure_jars("kafka")
jars = java_classpath(folder).split(":")
print(f"kafka jars ready: {len(jars)} jars in {folder}")
PY
