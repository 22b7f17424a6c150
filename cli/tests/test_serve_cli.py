"""``darkroom serve``: the whole stack comes up, takes an upload through its API, and stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from darkroom_dev.testing.browser import wait_for

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[3] / "shared" / "corpus"
)


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.e2e
def test_serve_prints_its_endpoints_and_processes_an_upload(kafka_bootstrap, tmp_path, browser):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DARKROOM_TOPIC_PREFIX": f"srv{uuid.uuid4().hex[:8]}.",
           "DARKROOM_TOPIC_PARTITIONS": "2"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "darkroom_cli", "serve", "--data-dir", str(tmp_path)],
        env=env, stdout=subprocess.PIPE, stderr=(tmp_path / "serve.err").open("w"), text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line, (tmp_path / "serve.err").read_text()[-3000:]
        info = json.loads(line)
        assert set(info) == {"upload_api", "catalog_api", "api_key"}
        auth = {"Authorization": f"Bearer {info['api_key']}"}
        assert (tmp_path / "api-keys.json").stat().st_mode & 0o777 == 0o600
        # Unauthenticated requests are refused on both APIs.
        assert httpx.get(f"{info['catalog_api']}/v1/galleries/g1/images").status_code == 401
        path = CORPUS / "orientation" / "Landscape_5.jpg"
        with path.open("rb") as f:
            r = httpx.post(f"{info['upload_api']}/v1/galleries/g1/uploads", headers=auth,
                           files={"file": (path.name, f, "image/jpeg")}, timeout=60)  # fmt: skip
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline:
            job = httpx.get(f"{info['catalog_api']}/v1/jobs/{job_id}", headers=auth, timeout=10)
            if job.status_code == 200 and (status := job.json()["status"]) in (
                "complete",
                "failed",
            ):
                break
            time.sleep(0.5)
        assert status == "complete"
        images = httpx.get(
            f"{info['catalog_api']}/v1/galleries/g1/images", headers=auth, timeout=10
        ).json()
        assert images["total"] == 1
        # The upload made through the API is on the gallery page, rendered in Chromium.
        browser.get(f"{info['catalog_api']}/galleries/g1?key={info['api_key']}")
        wait_for(
            lambda: browser.execute_script(
                "const i = document.querySelector('img'); return i && i.complete && i.naturalWidth > 0;"
            )
        )
        assert "Landscape_5.jpg" in browser.page_source
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0, (tmp_path / "serve.err").read_text()[-3000:]


@pytest.mark.parametrize("runs", [2])
def test_admin_key_is_made_once_per_data_dir(tmp_path, runs):
    from darkroom_cli.commands.serve import admin_key

    keys = {admin_key(tmp_path)[0] for _ in range(runs)}
    assert len(keys) == 1
    [entry] = json.loads((tmp_path / "api-keys.json").read_text())
    assert entry["scopes"] == ["admin"]
    assert len(entry["key"]) >= 32
