"""One ``cataloged`` per job attempt after a worker died between its two acknowledgements.

The state a SIGKILL leaves in that window, built on a real broker: the jobs changelog
holds job A as ``processing`` with one of its two variants done, the consumer group is
committed past those inputs, the ``cataloged`` that A's last ``variant-done`` caused is
already on the topic (its send was acknowledged), and that ``variant-done`` is still to
be handled (its changelog write never happened, so it was never committed). A fresh
catalog worker (no local state) restores A, handles the ``variant-done`` again, and
must not send A's ``cataloged`` a second time. Job B, in the same state but whose
``cataloged`` never reached the topic, must get exactly one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest

from darkroom_catalog.jobs import apply
from darkroom_common.topics import create_topics, layouts
from darkroom_schemas import CatalogedV1
from darkroom_schemas.topics import topics_for_stage

from .conftest import CatalogService, job_state

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(180)]


async def _job(svc: CatalogService, image_id: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    headers = {"Authorization": f"Bearer {svc.keys['read']}"}
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{svc.base}/v1/jobs/{image_id}", headers=headers) as r:
                body = await r.json()
                if r.status == 200 and body["status"] == "complete":
                    return dict(body)
            assert time.monotonic() < deadline, f"{image_id}: {body}\n{svc.log_tail()}"
            await asyncio.sleep(0.3)


async def _reused(svc: CatalogService) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{svc.base}/metrics") as r:
        text = await r.text()
    for line in text.splitlines():
        if line.startswith("darkroom_redelivery_reused_total{") and 'kind="cataloged"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_cataloged_already_on_the_topic_is_not_sent_again(kafka_bootstrap, tmp_path, flow):
    svc = CatalogService(kafka_bootstrap, tmp_path)
    asyncio.run(
        create_topics(
            svc.bootstrap, layouts(svc.prefix, svc.partitions, 1, topics_for_stage("catalog"))
        )
    )
    uid = uuid.uuid4().hex[:6]
    a, b = (flow(f"{n}-{uid}", gallery_id=f"g-{uid}", job_id=f"{n}-{uid}") for n in "ab")
    applied = {
        job: [
            *(job.uploaded(), job.validated(), job.requested("thumb", 2)),
            *(job.requested("medium", 2), job.done("thumb")),
        ]
        for job in (a, b)
    }
    states = {job: job_state(events) for job, events in applied.items()}
    assert {s.status for s in states.values()} == {"processing"}
    last = {job: job.done("medium") for job in (a, b)}
    sent_before_the_kill = apply(states[a], last[a])[1]
    assert [c.status for c in sent_before_the_kill] == ["complete"]

    async def window() -> None:
        await svc.seed(list(states.values()), [*applied[a], *applied[b]])
        await svc.produce([*sent_before_the_kill, last[a], last[b]])

    asyncio.run(window())
    try:
        svc.start()

        async def scenario() -> tuple[list[CatalogedV1], float]:
            await _job(svc, a.image_id)
            await _job(svc, b.image_id)
            await asyncio.sleep(1.0)  # a repeat would be acknowledged by now
            events = [e for e in await svc.read("cataloged") if isinstance(e, CatalogedV1)]
            return events, await _reused(svc)

        events, reused = asyncio.run(scenario())
    finally:
        svc.stop()
    by_image = {job.image_id: [e for e in events if e.image_id == job.image_id] for job in (a, b)}
    assert [e.event_id for e in by_image[a.image_id]] == [sent_before_the_kill[0].event_id]
    assert [e.status for e in by_image[b.image_id]] == ["complete"]
    assert reused == 1
