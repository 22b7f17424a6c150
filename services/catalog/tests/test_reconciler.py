"""The reconciler on a real broker, with the worker as a subprocess.

Two jobs are put into the jobs table by hand (records on its changelog) as
``processing``, with the catalog's consumer group committed past every input:

* A's ``variant-done`` events are on the topic but were never applied: the
  reconciler reads them again and A ends ``complete``;
* B's inputs are not on the topics at all: B ends ``failed`` with ``stalled``;

and a healthy job C that flows normally is never touched. Each ends with exactly
one ``cataloged``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from darkroom_common.topics import create_topics, layouts
from darkroom_schemas import CatalogedV1
from darkroom_schemas.topics import topics_for_stage

from .conftest import CatalogService, job_state

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(180)]


async def _cataloged(svc: CatalogService, want: set[str], timeout_s: float = 60) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        events = [e for e in await svc.read("cataloged") if isinstance(e, CatalogedV1)]
        if want <= {e.image_id for e in events}:
            return events
        assert time.monotonic() < deadline, f"no cataloged for {want}:\n{svc.log_tail()}"
        await asyncio.sleep(0.5)


async def _metrics(svc: CatalogService) -> dict[tuple[str, str], float]:
    async with aiohttp.ClientSession() as http, http.get(f"{svc.base}/metrics") as r:
        text = await r.text()
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("darkroom_reconciler_") and s.name.endswith("_total"):
                out[(s.name, s.labels.get("outcome", ""))] = s.value
    return out


def test_reconciler_finishes_applies_or_fails_stalled_jobs(kafka_bootstrap, tmp_path, flow):
    svc = CatalogService(
        kafka_bootstrap,
        tmp_path,
        DARKROOM_CATALOG_RECONCILE_AFTER_S="2",
        DARKROOM_CATALOG_RECONCILE_INTERVAL_S="0.5",
    )
    asyncio.run(
        create_topics(
            svc.bootstrap, layouts(svc.prefix, svc.partitions, 1, topics_for_stage("catalog"))
        )
    )
    uid = uuid.uuid4().hex[:6]
    a, b, c = (flow(f"{n}-{uid}", gallery_id=f"g-{uid}") for n in "abc")
    a_events = [a.uploaded(), a.validated(), a.requested("thumb", 2), a.requested("medium", 2)]
    a_done = [a.done("thumb"), a.done("medium")]
    b_events = [b.uploaded(), b.validated(), b.requested("thumb", 2), b.requested("medium", 2)]
    states = [job_state(a_events), job_state(b_events)]
    assert [s.status for s in states] == ["processing", "processing"]
    asyncio.run(svc.seed(states, [*a_events, *a_done]))
    try:
        svc.start()

        async def scenario() -> tuple[list[Any], dict[tuple[str, str], float]]:
            await _cataloged(svc, {a.image_id, b.image_id})
            await svc.produce(
                [c.uploaded(), c.validated(), c.requested("thumb", 1), c.done("thumb")]
            )
            await _cataloged(svc, {c.image_id})
            await asyncio.sleep(4)  # two bounds: C would have been found by now
            return await _cataloged(svc, set()), await _metrics(svc)

        events, metrics = asyncio.run(scenario())
    finally:
        svc.stop()
    by_image = {e.image_id: e for e in events}
    assert len(events) == 3, [(e.image_id, e.status) for e in events]  # one each
    assert by_image[a.image_id].status == "complete"
    assert {v.name for v in by_image[a.image_id].variants} == {"thumb", "medium"}
    assert (by_image[b.image_id].status, by_image[b.image_id].reason_code) == ("failed", "stalled")
    assert by_image[c.image_id].status == "complete"
    assert metrics[("darkroom_reconciler_jobs_total", "finished")] == 1
    assert metrics[("darkroom_reconciler_jobs_total", "failed_stalled")] == 1
    assert ("darkroom_reconciler_jobs_total", "advanced") not in metrics
    assert metrics[("darkroom_reconciler_runs_total", "")] >= 4
