"""``darkroom bridge s3-events``: notifications from a file or stdin become ``uploaded`` events."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from darkroom_common.topics import create_topics, layouts
from darkroom_ingest.testing import new_prefix, read_events

SQS_MESSAGE = {
    "Records": [
        {
            "eventSource": "aws:sqs",
            "messageId": "m1",
            "body": json.dumps({"Records": [
                {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                 "s3": {"bucket": {"name": "photos"},
                        "object": {"key": "originals/bridge-g/img7/IMG+7.jpg", "size": 1234}}},
                {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                 "s3": {"bucket": {"name": "photos"}, "object": {"key": "tmp/x.jpg", "size": 1}}},
            ]}),
        }
    ]
}  # fmt: skip


def darkroom(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "darkroom_cli", *args], input=stdin, capture_output=True, text=True,
        timeout=60, check=False, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_dry_run_from_stdin_prints_events_and_skips():
    proc = darkroom("bridge", "s3-events", "-", "--dry-run", stdin=json.dumps(SQS_MESSAGE))
    assert proc.returncode == 0, proc.stderr
    ok, skipped = (json.loads(line) for line in proc.stdout.splitlines())
    assert ok == {"ok": True, "image_id": "img7", "gallery_id": "bridge-g",
                  "object_key": "originals/bridge-g/img7/IMG 7.jpg", "produced": False}  # fmt: skip
    assert (skipped["ok"], skipped["reason"]) == (False, "outside_prefix")


def test_bad_input_and_missing_files_exit_non_zero(tmp_path):
    assert darkroom("bridge", "s3-events", "-", stdin="{not json").returncode == 1
    assert darkroom("bridge", "s3-events", "-", stdin='{"hello": 1}').returncode == 1
    assert darkroom("bridge", "s3-events", str(tmp_path / "none.json")).returncode == 2


@pytest.mark.kafka
def test_events_are_produced_to_uploaded(kafka_bootstrap, tmp_path):
    prefix = new_prefix()
    asyncio.run(create_topics(kafka_bootstrap, layouts(prefix, 2)))
    doc = tmp_path / "events.json"
    doc.write_text(json.dumps(SQS_MESSAGE))
    proc = darkroom("bridge", "s3-events", str(doc),
                    env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DARKROOM_TOPIC_PREFIX": prefix})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (event,) = read_events(kafka_bootstrap, f"{prefix}uploaded", 1)
    assert (event.image_id, event.source, event.size_bytes) == ("img7", "s3-notification", 1234)
