"""Load: 1,000 uploads in one burst from 100 concurrent clients through the upload API.

Runs :mod:`darkroom_dev.load` (the code behind ``bench/load_bench.py``) against
the session broker: the four services and the upload API as real processes,
real corpus photos, every job followed to its ``cataloged`` event. Prints the
figures (``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import httpx
import pytest

from darkroom_dev.load import PHOTOS, run_load, start_upload_api
from darkroom_imaging.profiles import load_profile

from .conftest import CORPUS, start_pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(600)]

UPLOADS, CLIENTS = 1000, 100
RENDER_WORKERS = 2
"""Render processes (one consumer group). With these small photos a render worker is bound
by per-event work more than by libvips, so a second one raises the end-to-end throughput
even on 2 cores (bench/load_bench.py on this VM: 6.1 → 8.4 jobs/s), keeping the test short."""
DEFAULT_VARIANTS = len(load_profile("default").specs)


def test_burst_of_1000_uploads_from_100_clients_all_cataloged_once(kafka_bootstrap, tmp_path):
    key = secrets.token_urlsafe(32)
    keys = [{"name": "load", "key": key, "scopes": ["upload", "read"]}]
    pipeline = start_pipeline(kafka_bootstrap, tmp_path / "data",
                              env={"DARKROOM_AUTH__API_KEYS": json.dumps(keys),
                                   "DARKROOM_LOG_LEVEL": "WARNING"})  # fmt: skip
    photos = [CORPUS / p for p in PHOTOS]
    try:
        for _ in range(RENDER_WORKERS - 1):
            pipeline.services.start("variants")
        api = start_upload_api(pipeline)
        warm = asyncio.run(run_load(api, key, pipeline, uploads=1, clients=1, photos=photos,
                                    run="warmup", timeout_s=120, should_abort=pipeline.died))  # fmt: skip
        assert warm.figures()["complete"] == 1, warm.lines()
        started = time.monotonic()
        report = asyncio.run(run_load(api, key, pipeline, uploads=UPLOADS, clients=CLIENTS,
                                      photos=photos, run="load", timeout_s=420,
                                      should_abort=pipeline.died))  # fmt: skip
        wall = time.monotonic() - started
        catalog = next(p for p in pipeline.services.processes if p.name == "catalog")
        galleries = sorted({u.gallery_id for u in report.uploads})
        with httpx.Client(base_url=f"http://127.0.0.1:{catalog.web_port}", timeout=30,
                          headers={"Authorization": f"Bearer {key}"}) as http:  # fmt: skip
            totals = {g: http.get(f"/v1/galleries/{g}/images").json()["total"] for g in galleries}
    finally:
        pipeline.stop()
    print(f"\n{RENDER_WORKERS} render workers; load run wall time {wall:.1f} s (after a warm-up upload)",
          *report.lines(), sep="\n")  # fmt: skip
    figures = report.figures()
    assert len(report.accepted) == UPLOADS, figures["refused"]
    assert report.lost == [], f"{len(report.lost)} accepted jobs never reached a terminal state"
    assert figures["complete"] == UPLOADS, (figures["failed"], figures["dead_letter"])
    # Exactly one cataloged record per job: no duplicate, none missing.
    assert len(report.cataloged) == UPLOADS
    assert set(report.cataloged.values()) == {1}
    # Each job is cataloged as the file its client sent, in that client's gallery, complete.
    for upload in report.accepted:
        end = report.ends[upload.job_id or ""].cataloged
        assert end is not None
        assert (end.gallery_id, end.filename) == (upload.gallery_id, upload.path.name)
        assert len(end.variants) == DEFAULT_VARIANTS
    # The catalog holds each gallery's ten photos once: nothing lost, nothing doubled.
    assert len(galleries) == UPLOADS // len(PHOTOS)
    assert set(totals.values()) == {len(PHOTOS)}, totals
    # Every latency is measured, and causal: cataloged after its client started the request.
    latencies = report.latencies_s()
    assert len(latencies) == UPLOADS
    assert min(latencies) > 0
