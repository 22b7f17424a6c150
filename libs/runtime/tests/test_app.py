"""Workers on a real broker: state restored before processing, exact counts through clean
restarts without local state and through workers joining and leaving a group.

The stage is the catalog's (two tables, nine routes) with test handlers: ``uploaded``
counts events per image in ``jobs`` (not idempotent on purpose: a lost, skipped or
twice-applied event shows as a wrong count) and sends nothing; every other route
does nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from darkroom_common.producer import KafkaEventProducer
from darkroom_common.settings import DarkroomSettings
from darkroom_common.storage import FilesystemStore
from darkroom_common.topics import create_topics, layouts
from darkroom_runtime import Emit, Route, StageApp, mount, ports_for
from darkroom_runtime.tables import Table
from darkroom_schemas import UploadedV1
from darkroom_schemas.topics import stage, topics_for_stage

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
PARTITIONS = 4


def upload(image: str, n: int) -> UploadedV1:
    return UploadedV1(
        job_id=image,
        gallery_id="g",
        image_id=image,
        correlation_id=f"c{n}",
        object_key=f"originals/g/{image}/f.jpg",
        filename="f.jpg",
        size_bytes=n + 1,
    )


class Counting:
    """One worker of the test stage, with its ``jobs`` table of counts."""

    def __init__(self, settings: DarkroomSettings, root: Path, store: str = "rocksdb") -> None:
        self.app = StageApp("catalog", settings, store=store)  # type: ignore[arg-type]
        self.jobs: Table = self.app.table("jobs", lane="jobs")
        self.app.table("galleries", lane="galleries")
        self.handled: list[str] = []

        async def count(event: Any) -> list[Emit]:
            self.jobs[event.image_id] = self.jobs.get(event.image_id, 0) + 1
            self.handled.append(event.correlation_id)
            return []

        async def nothing(event: Any) -> list[Emit]:
            return []

        handlers = {t: Route.each(nothing, lane="jobs") for t in stage("catalog").consumes}
        handlers["uploaded"] = Route.each(count, lane="jobs")
        handlers["catalog.cataloged-by-gallery"] = Route.each(nothing, lane="galleries")
        handlers["cataloged"] = Route.each(nothing, lane="galleries")
        ports = ports_for("catalog", settings, store=FilesystemStore(root / "objects"))
        mount(self.app, "catalog", handlers, ports)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.app.run(self.stop))
        while not self.app._started:  # noqa: ASYNC110 - start-up is quick
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await self.task

    def counts(self) -> dict[str, int]:
        return dict(self.app.tables["jobs"].items())


def settings_for(bootstrap: str, prefix: str, data: Path) -> DarkroomSettings:
    from darkroom_dev.testing.kafka import free_port

    return DarkroomSettings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        topic_partitions=PARTITIONS,
        data_dir=data,
        web_port=free_port(),
        session_timeout_s=6,
        commit_interval_s=0.2,
        revoke_timeout_s=10,
    )


async def committed(bootstrap: str, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(o.offset for tp, o in offsets.items() if tp.topic.endswith(".uploaded"))


async def wait_committed(bootstrap: str, group: str, total: int, timeout_s: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (done := await committed(bootstrap, group)) < total:
        assert asyncio.get_running_loop().time() < deadline, f"{done} of {total} committed"
        await asyncio.sleep(0.2)


async def send(bootstrap: str, prefix: str, events: list[UploadedV1]) -> None:
    async with KafkaEventProducer(bootstrap, topic_prefix=prefix) as producer:
        for chunk in range(0, len(events), 50):
            await producer.send_many([("uploaded", e, None) for e in events[chunk : chunk + 50]])


async def deployment(bootstrap: str) -> str:
    prefix = f"rt{uuid.uuid4().hex[:8]}."
    await create_topics(bootstrap, layouts(prefix, PARTITIONS, 1, topics_for_stage("catalog")))
    return prefix


async def test_a_restart_without_local_state_restores_it_before_processing(
    kafka_bootstrap, tmp_path
):
    prefix = await deployment(kafka_bootstrap)
    events = [upload(f"img-{i % 10}", i) for i in range(200)]
    expected = Counter(e.image_id for e in events)
    worker = Counting(settings_for(kafka_bootstrap, prefix, tmp_path / "a"), tmp_path)
    await worker.start()
    await send(kafka_bootstrap, prefix, events)
    await wait_committed(kafka_bootstrap, f"{prefix}catalog", len(events))
    assert worker.counts() == expected
    await worker.close()

    # A new worker with an empty data folder: the counts come back from the changelog,
    # and no committed event is handled again.
    fresh = Counting(settings_for(kafka_bootstrap, prefix, tmp_path / "b"), tmp_path)
    await fresh.start()
    more = [upload(f"img-{i % 10}", i) for i in range(200, 260)]
    await send(kafka_bootstrap, prefix, more)
    await wait_committed(kafka_bootstrap, f"{prefix}catalog", len(events) + len(more))
    assert fresh.counts() == expected + Counter(e.image_id for e in more)
    await fresh.close()
    assert sorted(fresh.handled) == sorted(e.correlation_id for e in more)

    # The same again with the memory store: rebuilt from the changelog on every start.
    memory = Counting(settings_for(kafka_bootstrap, prefix, tmp_path / "c"), tmp_path, "memory")
    await memory.start()
    while memory.app.ready_problems():  # noqa: ASYNC110 - wait for the restore
        await asyncio.sleep(0.1)
    assert memory.counts() == expected + Counter(e.image_id for e in more)
    await memory.close()
    assert memory.handled == []


async def test_workers_joining_and_leaving_mid_stream_lose_and_repeat_nothing(
    kafka_bootstrap, tmp_path
):
    prefix = await deployment(kafka_bootstrap)
    events = [upload(f"img-{i % 17}", i) for i in range(600)]
    first = Counting(settings_for(kafka_bootstrap, prefix, tmp_path / "1"), tmp_path)
    await first.start()
    await send(kafka_bootstrap, prefix, events[:200])
    second = Counting(settings_for(kafka_bootstrap, prefix, tmp_path / "2"), tmp_path)
    await second.start()  # joins: the group rebalances while events flow
    await send(kafka_bootstrap, prefix, events[200:400])
    await asyncio.sleep(2)
    await first.close()  # leaves: its partitions move to the second worker
    await send(kafka_bootstrap, prefix, events[400:])
    await wait_committed(kafka_bootstrap, f"{prefix}catalog", len(events))
    assert second.counts() == Counter(e.image_id for e in events)
    await second.close()
    handled = first.handled + second.handled
    assert sorted(handled) == sorted(e.correlation_id for e in events)  # each exactly once
