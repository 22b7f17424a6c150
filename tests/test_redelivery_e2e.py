"""Re-sent ``uploaded`` events are cheap: no second validation, development or render.

The four services run as processes against the real broker. A CR2 and two JPEGs go
through to ``complete``; then their ``uploaded`` events are read back from the topic
and produced again, unchanged (what a redelivery after a crash or an operator's
re-send does). Once every consumer group has caught up, the test checks that ingest
answered them from its stored verdicts (no original read again), that the CR2 was not
developed again, that every extra ``variant-done`` was reused rather than rendered,
and that the gallery is the same. The figures are printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from darkroom_common.producer import KafkaEventProducer
from darkroom_dev.local.pipeline import LocalPipeline
from darkroom_ingest.testing import READ_KEY, auth
from darkroom_runtime.lag import LagExporter, lag_metrics
from darkroom_schemas import UploadedV1, ValidatedV1, VariantDoneV1
from darkroom_schemas.topics import STAGES

from .conftest import CORPUS, start_pipeline
from .faults.checks import API_ENV, catalog_url, gallery_items, metric_sums, read_topic

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

FILES = [
    CORPUS / "raw" / "cr2_canon_img5952.cr2",
    CORPUS / "jpeg" / "exif_gps_nikon_coolpix_p6000.jpg",
    CORPUS / "jpeg" / "exif_lens_gps_iphone6.jpg",
]
GALLERY = "redeliver"


async def total_lag(pipeline: LocalPipeline) -> int:
    """Messages every stage's consumer group still has to handle, summed."""
    total = 0
    for s in STAGES:
        exporter = LagExporter(
            pipeline.bootstrap,
            f"{pipeline.prefix}{s.name}",
            lambda s=s: [f"{pipeline.prefix}{t}" for t in s.consumes],
            metrics=lag_metrics(CollectorRegistry()),
        )
        try:
            total += sum((await exporter.lag()).values())
        finally:
            await exporter.close()
    return total


async def settle(pipeline: LocalPipeline, timeout_s: float = 120) -> None:
    """Wait until every consumer group has caught up, twice in a row one second apart."""
    deadline = time.monotonic() + timeout_s
    caught_up = 0
    while caught_up < 2:
        assert time.monotonic() < deadline, "the consumer groups did not catch up"
        assert (why := pipeline.died()) is None, why
        caught_up = caught_up + 1 if await total_lag(pipeline) == 0 else 0
        await asyncio.sleep(1)


async def figures(pipeline: LocalPipeline) -> dict[str, Any]:
    """What the pipeline has done so far: metrics of the services and events on the topics."""
    prefix = pipeline.prefix
    validated = [
        e for e in await read_topic(pipeline.bootstrap, f"{prefix}validated")
        if isinstance(e, ValidatedV1)
    ]  # fmt: skip
    done = [
        e for e in await read_topic(pipeline.bootstrap, f"{prefix}variant-done")
        if isinstance(e, VariantDoneV1)
    ]  # fmt: skip
    reused = await metric_sums(pipeline, "darkroom_redelivery_reused_total")
    read = await metric_sums(pipeline, "darkroom_object_bytes_total", direction="read")
    developed = await metric_sums(pipeline, "darkroom_raw_develop_seconds_count")
    return {
        "developments": developed.get("raw-provider", 0.0),
        "ingest bytes read": read.get("ingest", 0.0),
        "verdicts reused": reused.get("ingest", 0.0),
        "masters reused": reused.get("raw-provider", 0.0),
        "ingest validated events": len({e.event_id for e in validated if e.derived_from is None}),
        "validated records": len(validated),
        "variant-done": len(done),
        "variant-done rendered": sum(
            1 for e in done if e.status == "done" and e.provenance.get("reused") != "true"
        ),
        "variant-done reused": sum(1 for e in done if e.provenance.get("reused") == "true"),
    }


async def gallery(pipeline: LocalPipeline) -> list[tuple[str, str, list[str]]]:
    """The gallery as the catalog API lists it: (image, status, variant names), sorted."""
    async with httpx.AsyncClient(base_url=catalog_url(pipeline), timeout=30) as http:
        items = await gallery_items(http, GALLERY, auth(READ_KEY))
    return sorted((i["image_id"], i["status"], sorted(i["variants"])) for i in items)


async def resend(pipeline: LocalPipeline, job_ids: Iterable[str]) -> list[UploadedV1]:
    """Read the jobs' ``uploaded`` events back from the topic and produce them again."""
    wanted = set(job_ids)
    events = [
        e for e in await read_topic(pipeline.bootstrap, f"{pipeline.prefix}uploaded")
        if isinstance(e, UploadedV1) and e.job_id in wanted
    ]  # fmt: skip
    async with KafkaEventProducer(pipeline.bootstrap, topic_prefix=pipeline.prefix) as producer:
        for event in events:
            await producer.send("uploaded", event)
    return events


def test_re_sent_uploads_are_answered_without_validating_developing_or_rendering(
    kafka_bootstrap, tmp_path
):
    pipeline = start_pipeline(kafka_bootstrap, tmp_path / "pipeline", env=API_ENV)
    try:
        results = asyncio.run(pipeline.run(FILES, gallery=GALLERY, timeout_s=240))
        statuses = {u.filename: end.status if end else None for u, end in results}
        assert set(statuses.values()) == {"complete"}, statuses

        async def scenario() -> tuple[dict, dict, list, list, int]:
            await settle(pipeline)
            before, listed = await figures(pipeline), await gallery(pipeline)
            sent = await resend(pipeline, [u.job_id for u, _ in results])
            await settle(pipeline)
            after, listed_after = await figures(pipeline), await gallery(pipeline)
            return before, after, listed, listed_after, len(sent)

        before, after, listed, listed_after, sent = asyncio.run(scenario())
    finally:
        pipeline.stop()

    print(f"\nre-sent uploaded events: {sent}")
    for name in before:
        print(f"  {name:<26} before {before[name]:>8g}  after {after[name]:>8g}")
    assert sent == len(FILES)
    assert before["developments"] == 1  # the CR2, once
    assert after["developments"] == before["developments"]  # not developed again
    assert after["masters reused"] == 1
    assert after["ingest bytes read"] == before["ingest bytes read"]  # no original read
    assert after["verdicts reused"] == len(FILES)
    assert after["ingest validated events"] == before["ingest validated events"]  # same events
    assert after["variant-done rendered"] == before["variant-done rendered"]  # nothing rendered
    extra = after["variant-done"] - before["variant-done"]
    assert extra == after["variant-done reused"] - before["variant-done reused"]
    assert listed_after == listed  # the gallery is unchanged, no image twice
    assert len({image for image, _, _ in listed}) == len(listed) == len(FILES)
    assert {status for _, status, _ in listed} == {"complete"}
