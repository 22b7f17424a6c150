"""The ingest service refuses to start, with a clear message, until its topics are right."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from darkroom_runtime.service import EXIT_CONFIG, EXIT_TOPICS

pytestmark = pytest.mark.kafka


def run_ingest(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DARKROOM_")}
    return subprocess.run(
        [sys.executable, "-m", "darkroom_ingest"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_missing_topics_stop_the_service(kafka_bootstrap, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:8]}."
    proc = run_ingest(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DARKROOM_TOPIC_PREFIX": prefix,
            "DARKROOM_DATA_DIR": str(tmp_path),
        }
    )
    assert proc.returncode == EXIT_TOPICS, proc.stderr
    assert f"ingest cannot start: {prefix}uploaded: missing" in proc.stderr
    assert "darkroom topics create" in proc.stderr


def test_invalid_setting_stops_the_service_before_touching_kafka(tmp_path):
    proc = run_ingest(
        {"DARKROOM_INGEST_TOPIC_PARTITIONS": "-3", "DARKROOM_DATA_DIR": str(tmp_path)}
    )
    assert proc.returncode == EXIT_CONFIG
    assert "DARKROOM_INGEST_TOPIC_PARTITIONS" in proc.stderr
