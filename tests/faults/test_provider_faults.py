"""The external RAW provider throttles (429 + Retry-After) for a while, then is slower than the deadline.

The raw-provider process talks over HTTP to the fake Imagen server
(:mod:`darkroom_raw_provider.testing`), which this test serves on a real port;
both galleries use ``processing_provider: imagen``. Real corpus RAWs (the
full-size CR2, the LG DNG, the Kodak KDC) and JPEGs are uploaded:

1. ``429`` phase: from the first API request on, every one is answered
   ``429 Retry-After: 1`` for ``THROTTLE_S``. The throttled development waits as
   told and completes; every job completes.
2. deadline phase: the DNG's and the KDC's projects never finish. Past
   ``DEADLINE_S`` their jobs fail with ``provider_timeout`` (the product's promise:
   README *APIs*, ``imagen.py``) and no master is stored; the CR2 completes, and
   the JPEGs, which never reach the provider, end long before the timeouts.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from darkroom_cli.tracker import JobEnd, JobTracker
from darkroom_common.objects import master_key
from darkroom_common.producer import KafkaEventProducer
from darkroom_dev.local.pipeline import LocalPipeline
from darkroom_dev.local.services import free_port
from darkroom_raw_provider.testing import API_KEY, FakeImagen, serve
from darkroom_schemas import GallerySettingsV1, UploadedV1

from ..conftest import CORPUS, PARTITIONS
from .checks import API_ENV, metric_sums, record, verify_outcome

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

THROTTLE_S = 4.0
DEADLINE_S = 10.0
RAWS = [CORPUS / f"raw/{n}" for n in ("cr2_canon_img5952.cr2", "dng_lg-h815_skia_sample_1mp.dng", "kdc_kodak_dc50.kdc")]  # fmt: skip
SLOW = {"dng_lg-h815_skia_sample_1mp.dng", "kdc_kodak_dc50.kdc"}
"""RAW file names whose projects never finish in the deadline phase."""
DEVELOPED = CORPUS / "orientation/Landscape_8.jpg"
"""What the fake delivers as every developed master (never uploaded itself)."""
GALLERIES = ("imagen-429", "imagen-slow")
PROFILE = "bench"
"""Four JPEG/WebP variants: what matters here is the provider, not AVIF encoding time."""


@pytest.fixture(scope="module")
def imagen_pipeline(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalPipeline, int]]:
    """The pipeline with the imagen provider at ``127.0.0.1:<port>`` (served by the test) for both galleries.

    The gallery settings are on their topic before the services start, so the
    very first RAW already goes to the external provider.
    """
    port = free_port()
    env = {
        **API_ENV,
        "DARKROOM_RETRY_BASE_DELAY_S": "0.05",
        "DARKROOM_RAW_PROVIDER_IMAGEN__BASE_URL": f"http://127.0.0.1:{port}/v1",
        "DARKROOM_RAW_PROVIDER_IMAGEN__API_KEY": API_KEY,
        "DARKROOM_RAW_PROVIDER_IMAGEN__DEADLINE_S": str(DEADLINE_S),
        "DARKROOM_RAW_PROVIDER_IMAGEN__POLL_INITIAL_S": "0.2",
        "DARKROOM_RAW_PROVIDER_IMAGEN__POLL_MAX_S": "1",
        "DARKROOM_RAW_PROVIDER_IMAGEN__BACKOFF_BASE_S": "0.2",
        "DARKROOM_RAW_PROVIDER_IMAGEN__HTTP_RETRIES": "12",
    }
    root = tmp_path_factory.mktemp("imagen-faults")
    pipeline = LocalPipeline(kafka_bootstrap, f"e2e{uuid.uuid4().hex[:8]}.", root, PARTITIONS, env)
    asyncio.run(_create_topics_with_imagen_galleries(pipeline))
    pipeline.start()
    try:
        yield pipeline, port
    finally:
        pipeline.stop()


async def _create_topics_with_imagen_galleries(pipeline: LocalPipeline) -> None:
    await pipeline.create_topics()
    async with KafkaEventProducer(pipeline.bootstrap, topic_prefix=pipeline.prefix) as producer:
        for g in GALLERIES:
            await producer.send(
                "gallery-settings", GallerySettingsV1(gallery_id=g, processing_provider="imagen")
            )


async def run_phase(
    pipeline: LocalPipeline, fake: FakeImagen, gallery: str, paths: list[Path]
) -> tuple[list[UploadedV1], dict[str, JobEnd], dict[str, float]]:
    """Upload ``paths`` to ``gallery`` and wait for every job; return uploads, ends, end times."""
    tracker = JobTracker(pipeline.bootstrap, topic_prefix=pipeline.prefix)
    await tracker.start()
    ended_at: dict[str, float] = {}
    try:
        uploads = await pipeline.upload(paths, gallery=gallery, profile=PROFILE)
        ends = await tracker.wait(
            [u.job_id for u in uploads],
            timeout_s=180,
            on_end=lambda end: ended_at.setdefault(end.job_id, time.monotonic()),
            should_abort=pipeline.died,
        )
        return uploads, ends, ended_at
    finally:
        await tracker.stop()


def image_of(project_name: str | None) -> str | None:
    """The image id in a project name ``darkroom-<image_id>-<8 hex>`` (imagen.py)."""
    return project_name[len("darkroom-") : -9] if project_name else None


def test_429_with_retry_after_then_deadline_provider_timeout(imagen_pipeline):
    pipeline, port = imagen_pipeline
    fake = FakeImagen(developed=DEVELOPED.read_bytes())

    async def scenario():
        async with serve(fake, port=port):
            # 1. Every API request is throttled for THROTTLE_S from the first one on.
            fake.throttle_first_s = THROTTLE_S
            jpegs = [CORPUS / "orientation/Landscape_2.jpg", CORPUS / "orientation/Portrait_2.jpg"]
            uploads, ends, ended_at = await run_phase(pipeline, fake, GALLERIES[0], RAWS + jpegs)
            throttle_end = fake.throttle_until
            report429 = await verify_outcome(
                pipeline,
                uploads,
                ends,
                fault=f"imagen 429 Retry-After: 1 for {THROTTLE_S:g} s",
                recovery_s=max(0.0, max(ended_at.values()) - throttle_end),
            )
            requests_429 = await metric_sums(
                pipeline, "darkroom_provider_requests_total", status="429"
            )
            masters = {
                u.image_id: await pipeline.store.head(master_key(u.gallery_id, u.image_id))
                for u in uploads[: len(RAWS)]
            }
            phase1 = (uploads, ends, report429, requests_429, masters)

            # 2. The DNG's and the KDC's projects never finish: slower than the deadline.
            fake.stall_files = SLOW
            jpegs = [CORPUS / "orientation/Landscape_3.jpg", CORPUS / "orientation/Portrait_3.jpg"]
            uploads, ends, ended_at = await run_phase(pipeline, fake, GALLERIES[1], RAWS + jpegs)
            slow = {u.job_id: "provider_timeout" for u in uploads if u.filename in SLOW}
            report_slow = await verify_outcome(
                pipeline,
                uploads,
                ends,
                fault=f"imagen slower than the {DEADLINE_S:g} s deadline",
                recovery_s=None,
                expect_failed=slow,
            )
            left_masters = [
                u.filename
                for u in uploads
                if u.job_id in slow
                and await pipeline.store.exists(master_key(u.gallery_id, u.image_id))
            ]
            phase2 = (uploads, ends, ended_at, slow, report_slow, left_masters)
            return phase1, phase2

    phase1, phase2 = asyncio.run(scenario())

    # -- 1. 429: the throttled developments waited as told, then completed.
    uploads, ends, report429, requests_429, masters = phase1
    record(report429)
    raw_images = {u.image_id for u in uploads[: len(RAWS)]}
    throttled = [h for h in fake.hits if h.status == 429]
    throttled_images = {image_of(h.project_name) for h in throttled}
    print(
        f"\nimagen 429 for {THROTTLE_S:g} s: {len(throttled)} requests answered 429 "
        f"({len(throttled_images)} of {len(RAWS)} RAW developments throttled), "
        f"{report429.complete}/{report429.uploads} complete {report429.recovery_s:.1f} s after the throttle ended"
    )
    assert not report429.problems
    assert report429.complete == report429.uploads
    assert throttled, "no request was throttled"
    assert throttled_images <= raw_images  # the JPEGs never reached the provider
    assert requests_429["raw-provider"] == len(throttled)  # the client counted each 429
    for image in throttled_images:  # Retry-After: 1 was honoured after each 429
        hits = [h for h in fake.hits if image_of(h.project_name) == image]
        assert all(b.at - a.at >= 0.95 for a, b in itertools.pairwise(hits) if a.status == 429)
    for u in uploads[: len(RAWS)]:  # every RAW was developed by the external provider
        c = ends[u.job_id].cataloged
        assert c is not None
        assert c.source_key == master_key(u.gallery_id, u.image_id)
        assert image_of(fake.names[masters[u.image_id].metadata["provider-job-id"]]) == u.image_id

    # -- 2. deadline: provider_timeout, no master, the others unaffected.
    uploads, ends, ended_at, slow, report_slow, left_masters = phase2
    record(report_slow)
    timed_out = [ended_at[j] for j in slow]
    jpeg_jobs = [u.job_id for u in uploads if u.filename.endswith(".jpg")]
    print(
        f"imagen slower than {DEADLINE_S:g} s for {len(slow)} of {len(RAWS)} RAWs: "
        f"{report_slow.failed} failed, {report_slow.complete}/{report_slow.uploads} complete; "
        f"JPEGs ended {max(timed_out) - max(ended_at[j] for j in jpeg_jobs):.1f} s before the last timeout"
    )
    assert not report_slow.problems
    assert report_slow.failed == {"provider_timeout": len(SLOW)}
    assert report_slow.complete == len(uploads) - len(SLOW)
    assert not left_masters  # a timed-out development leaves the gallery untouched
    for job in slow:
        c = ends[job].cataloged
        assert c is not None
        assert f"{DEADLINE_S:g} s" in (c.reason_message or "")
    assert all(ended_at[j] < max(timed_out) for j in jpeg_jobs)
