"""``darkroom upload`` against the upload API run as its own process (``python -m darkroom_ingest.api``)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from darkroom_common.topics import create_topics, layouts
from darkroom_ingest.testing import (
    KEYS,
    READ_KEY,
    UPLOAD_KEY,
    free_port,
    new_prefix,
    read_events,
    wait_ready,
)

pytestmark = pytest.mark.kafka

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus"
)
LIMIT = 400_000


@pytest.fixture
def upload_api(kafka_bootstrap, tmp_path) -> Iterator[tuple[str, str]]:
    prefix = new_prefix()
    asyncio.run(create_topics(kafka_bootstrap, layouts(prefix, 2)))
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DARKROOM_")}
    env = {
        **clean,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DARKROOM_TOPIC_PREFIX": prefix,
        "DARKROOM_STORAGE__ROOT": str(tmp_path / "objects"),
        "DARKROOM_AUTH__API_KEYS": json.dumps(KEYS),
        "DARKROOM_INGEST_API_PORT": str(port),
        "DARKROOM_INGEST_MAX_UPLOAD_BYTES": str(LIMIT),
    }
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "darkroom_ingest.api"], env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url)
        yield url, prefix
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def darkroom(*args: str, key: str | None = UPLOAD_KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DARKROOM_API_KEY"}
    if key:
        env["DARKROOM_API_KEY"] = key
    env["COLUMNS"] = "120"
    return subprocess.run(
        [sys.executable, "-m", "darkroom_cli", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )  # fmt: skip


def test_upload_streams_files_with_progress_and_prints_job_urls(
    upload_api, kafka_bootstrap, tmp_path
):
    url, prefix = upload_api
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("exif_gps_nikon_coolpix_p6000.jpg", "exif_gps_only_thompson_springs.jpg"):
        (folder / name).write_bytes((CORPUS / "jpeg" / name).read_bytes())
    proc = darkroom("upload", str(folder), "--gallery", "cli-g", "--api", url, "--profile", "web")
    assert proc.returncode == 0, proc.stderr
    lines = [line.split("\t") for line in proc.stdout.splitlines()]
    assert [Path(p).name for p, _, _ in lines] == sorted(p.name for p in folder.iterdir())
    for _, job_id, job_url in lines:
        assert job_url == f"{url}/v1/jobs/{job_id}"
    assert "2 file(s)" in proc.stderr  # the progress bar
    assert "kB" in proc.stderr
    events = read_events(
        kafka_bootstrap, f"{prefix}uploaded", 2, match=lambda e: e.gallery_id == "cli-g"
    )
    assert sorted(e.job_id for e in events) == sorted(job for _, job, _ in lines)
    assert {(e.profile, e.source) for e in events} == {("web", "api")}


def test_upload_json_output(upload_api):
    url, _ = upload_api
    proc = darkroom("upload", str(CORPUS / "jpeg" / "exif_nikon_d70.jpg"), "--gallery", "g",
                    "--api", url, "--json", "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout)
    assert line["ok"] is True
    assert line["job_id"] == line["image_id"]


@pytest.mark.parametrize(
    ("name", "size", "key", "reason"),
    [
        ("big.jpg", LIMIT + 1, UPLOAD_KEY, "file_too_large"),
        ("notes.txt", 10, UPLOAD_KEY, "unsupported_extension"),
        ("a.jpg", 10, READ_KEY, "forbidden"),
        ("a.jpg", 10, None, "unauthenticated"),
    ],
)
def test_refusals_exit_non_zero_with_the_reason(upload_api, tmp_path, name, size, key, reason):
    url, _ = upload_api
    path = tmp_path / name
    path.write_bytes(b"\xff" * size)
    proc = darkroom("upload", str(path), "--gallery", "g", "--api", url, key=key)
    assert proc.returncode == 1
    assert "refused" in proc.stderr
    assert reason in proc.stderr
    assert proc.stdout == ""


def test_missing_files_and_an_unreachable_api_exit_2(tmp_path):
    assert darkroom("upload", str(tmp_path / "nope.jpg"), "--gallery", "g").returncode == 2
    path = tmp_path / "a.jpg"
    path.write_bytes(b"x")
    proc = darkroom(
        "upload", str(path), "--gallery", "g", "--api", f"http://127.0.0.1:{free_port()}"
    )
    assert proc.returncode == 2
    assert "cannot reach the upload API" in proc.stderr
