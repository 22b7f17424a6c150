"""The object server fails mid-run: 503 SlowDown for 10 s, or gone (connections refused) for 10 s.

The four services run on the S3 backend of the real S3 server (S3Proxy, SigV4
verified) through a :class:`FaultProxy`. Ten real photos (a DNG among them)
are uploaded; once the first job has ended, the proxy fails every
request (or vanishes) for ``OUTAGE_S``, then heals. Every job must complete with
all of its variants in the bucket, nothing twice, no half-processed image in the
gallery; the stage retries span longer than the outage, so none needs a requeue.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from darkroom_cli.tracker import JobTracker
from darkroom_common.storage import S3Store, StorageSettings
from darkroom_dev.local.pipeline import LocalPipeline
from darkroom_dev.testing.faultproxy import SLOW_DOWN, FaultProxy
from darkroom_dev.testing.s3 import S3Server, drop_bucket

from ..conftest import CORPUS, start_pipeline
from .checks import API_ENV, FaultReport, metric_sums, record, verify_outcome

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.s3, pytest.mark.slow]

OUTAGE_S = 10.0
PHOTOS = [
    *(CORPUS / f"orientation/Landscape_{n}.jpg" for n in range(5)),
    *(CORPUS / f"orientation/Portrait_{n}.jpg" for n in range(4)),
    CORPUS / "raw/dng_lg-h815_skia_sample_1mp.dng",
]
"""10 distinct real photos, one a RAW (so the raw-provider reads and writes S3 too)."""
PROFILE = "bench"
"""Four JPEG/WebP variants: what matters here is the store, not AVIF encoding time."""
RETRY_ENV = {
    **API_ENV,
    "DARKROOM_MAX_RETRIES": "8",
    "DARKROOM_RETRY_BASE_DELAY_S": "0.5",
    "DARKROOM_RETRY_MAX_DELAY_S": "4",
}
"""Stage retries with at least 23 s of backoff (0.5, 1, 2, then 4 s), longer than the outage.

The defaults (3 stage retries from 0.2 s: about 1.5 s, on top of botocore's 4
attempts with random waits of up to 1, 2 and 4 s) outlast a 10 s outage only when
botocore's jitter is generous (one run here with them: every job completed); past
them the event is dead-lettered and its job waits for ``darkroom dlq requeue``
(docs/runbook.md, *Recovery: object-store outage*). These settings make the
margin deterministic."""


@pytest.fixture(scope="module")
def s3_pipeline(
    kafka_bootstrap: str, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalPipeline, FaultProxy]]:
    """The pipeline on a new bucket, every service (and ``pipeline.store``) behind one proxy."""
    settings = s3_server.settings(
        f"faults-{uuid.uuid4().hex[:12]}", connect_timeout_s=2.0, read_timeout_s=30.0
    )
    asyncio.run(_bucket(settings, create=True))
    try:
        with FaultProxy(s3_server.endpoint_url) as proxy:
            via_proxy = settings.model_copy(update={"endpoint_url": proxy.endpoint_url})
            root = tmp_path_factory.mktemp("s3-faults")
            pipeline = start_pipeline(kafka_bootstrap, root, env=RETRY_ENV, storage=via_proxy)
            try:
                yield pipeline, proxy
            finally:
                pipeline.stop()
    finally:
        asyncio.run(_bucket(settings, create=False))


async def _bucket(settings: StorageSettings, *, create: bool) -> None:
    async with S3Store(settings) as store:
        await (store.ensure_bucket() if create else drop_bucket(store))


@dataclass
class Outage:
    """What one outage did: the verified report and the figures behind it.

    Attributes:
        report: :func:`verify_outcome`'s report (recovery: heal → last job's outcome).
        in_flight: jobs not yet ended when the fault began.
        ended_late: jobs that ended in the second half of the outage (with the
            store down no variant can be written, so none should).
        held: jobs that ended only after the store healed.
        retries: stage retries from the fault on, by service (``darkroom_retries_total``).
    """

    report: FaultReport
    in_flight: int
    ended_late: int
    held: int
    retries: dict[str, float]


async def run_through_outage(
    pipeline: LocalPipeline,
    proxy: FaultProxy,
    *,
    gallery: str,
    fault: str,
    start_fault: Callable[[], None],
) -> Outage:
    """Upload :data:`PHOTOS`, call ``start_fault`` once the first job ended, heal after ``OUTAGE_S``."""
    tracker = JobTracker(pipeline.bootstrap, topic_prefix=pipeline.prefix)
    await tracker.start()
    ended_at: dict[str, float] = {}
    try:
        uploads = await pipeline.upload(PHOTOS, gallery=gallery, profile=PROFILE)
        waiter = asyncio.create_task(
            tracker.wait(
                [u.job_id for u in uploads],
                timeout_s=240,
                on_end=lambda end: ended_at.setdefault(end.job_id, time.monotonic()),
                should_abort=pipeline.died,
            )
        )
        deadline = time.monotonic() + 120
        while not ended_at and not waiter.done():
            assert time.monotonic() < deadline, "no job ended within 120 s"
            await asyncio.sleep(0.05)
        in_flight = len(uploads) - len(ended_at)
        retries_before = await metric_sums(pipeline, "darkroom_retries_total")
        start_fault()
        late = time.monotonic() + OUTAGE_S / 2
        await asyncio.sleep(OUTAGE_S)
        proxy.heal()
        healed = time.monotonic()
        ends = await waiter
        last = max(ended_at.values(), default=healed)
        report = await verify_outcome(
            pipeline, uploads, ends, fault=fault, recovery_s=max(0.0, last - healed)
        )
        retries = await metric_sums(pipeline, "darkroom_retries_total")
        return Outage(
            report,
            in_flight,
            ended_late=sum(late < t <= healed for t in ended_at.values()),
            held=sum(t > healed for t in ended_at.values()),
            retries={k: v - retries_before.get(k, 0.0) for k, v in retries.items()},
        )
    finally:
        proxy.heal()  # a no-op unless the scenario failed mid-fault
        await tracker.stop()
        await pipeline.store.close()


def check(outage: Outage, what: str) -> None:
    """Record and print ``outage``; assert it landed mid-run and every job completed."""
    report = outage.report
    record(report)
    print(
        f"\n{report.fault} with {outage.in_flight}/{report.uploads} jobs in flight: {what}, "
        f"stage retries {outage.retries}; {outage.held} jobs held up until the store was back; "
        f"{report.complete}/{report.uploads} complete {report.recovery_s:.1f} s after it was back"
    )
    assert outage.in_flight > 0, "every job ended before the fault: it did not land mid-run"
    assert outage.held > 0, "no job waited for the store: the outage did not hold anything up"
    assert outage.ended_late == 0, "jobs kept completing while the store was down"
    assert not report.problems
    assert report.complete == report.uploads >= 10


def test_503_slowdown_for_10_s_mid_run_every_job_completes(s3_pipeline):
    pipeline, proxy = s3_pipeline
    before = proxy.stats.injected[503]
    outage = asyncio.run(
        run_through_outage(
            pipeline,
            proxy,
            gallery="s3-503",
            fault=f"S3 503 SlowDown for {OUTAGE_S:g} s",
            start_fault=lambda: proxy.fail(SLOW_DOWN),
        )
    )
    answered = proxy.stats.injected[503] - before
    check(outage, f"{answered} requests answered 503 SlowDown")
    assert answered > 0  # the services' requests did get the 503s


def test_store_gone_for_10_s_mid_run_every_job_completes(s3_pipeline):
    pipeline, proxy = s3_pipeline
    before = proxy.stats.resets
    outage = asyncio.run(
        run_through_outage(
            pipeline,
            proxy,
            gallery="s3-gone",
            fault=f"S3 connections refused for {OUTAGE_S:g} s",
            start_fault=proxy.vanish,
        )
    )
    check(outage, f"{proxy.stats.resets - before} open connections reset, new ones refused")
