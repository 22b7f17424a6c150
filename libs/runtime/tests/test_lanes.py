"""Lanes without a broker: order, batching, and never moving past an unfinished event.

The lane's host is a tiny fake (assignment, checkpoint, a producer that acknowledges
changelog records or refuses them); the runner and the tables are the real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord, RecordMetadata
from prometheus_client import CollectorRegistry

from darkroom_common.errors import BrokerUnavailable
from darkroom_common.metrics import Metrics
from darkroom_common.producer import KafkaEventProducer
from darkroom_common.settings import DarkroomSettings
from darkroom_runtime import Emit, Route
from darkroom_runtime.lanes import Bound, Lane
from darkroom_runtime.runner import RecordRunner
from darkroom_runtime.tables import Table
from darkroom_schemas import UploadedV1, encode
from darkroom_schemas.topics import stage

TP = TopicPartition("t.uploaded", 0)
SPEC = stage("catalog").route("uploaded")


def record(offset: int, value: bytes | None = None) -> ConsumerRecord[bytes, bytes]:
    event = UploadedV1(
        job_id=f"i{offset}", gallery_id="g", image_id=f"i{offset}", correlation_id="c",
        object_key="k", filename="f.jpg", size_bytes=1,
    )  # fmt: skip
    data = encode(event) if value is None else value
    return ConsumerRecord("t.uploaded", 0, offset, 0, 0, b"k", data, None, 1, len(data), [])


class Producer(KafkaEventProducer):
    """Acknowledges changelog records (offsets counting up), refusing the first ``fail``."""

    def __init__(self, fail: int = 0) -> None:
        super().__init__("unused:9092")
        self.fail = fail
        self.sent: list[tuple[str, bytes | None]] = []

    async def send_raw(self, topic: str, value: bytes | None, **kw: Any) -> Any:
        if self.fail:
            self.fail -= 1
            raise BrokerUnavailable("the broker is away")
        self.sent.append((topic, value))
        future = asyncio.get_running_loop().create_future()
        future.set_result(RecordMetadata(topic, 0, TP, len(self.sent) - 1, -1, 0, -1))
        return future


class Checkpoint:
    def __init__(self) -> None:
        self.offsets: list[int] = []

    def done(self, tp: TopicPartition, offset: int) -> None:
        self.offsets.append(offset)


class Host:
    def __init__(self, producer: Producer | None = None) -> None:
        self.producer = producer or Producer()
        settings = DarkroomSettings(retry_base_delay_s=0.001, max_retries=1)
        self.runner = RecordRunner(
            stage("catalog"), settings, self.producer, Metrics(CollectorRegistry())
        )
        self.checkpoint = Checkpoint()
        self.assigned = True

    def owns(self, tp: TopicPartition, generation: int) -> bool:
        return self.assigned

    def backlog_changed(self, lane: Lane) -> None:
        pass


async def drain(lane: Lane, host: Host, offsets: int, timeout_s: float = 5) -> None:
    lane.start()
    try:
        async with asyncio.timeout(timeout_s):
            while len(host.checkpoint.offsets) < offsets:  # noqa: ASYNC110 - polling a fake
                await asyncio.sleep(0.01)
    finally:
        await lane.stop(0)


async def test_events_are_handled_and_marked_done_in_offset_order():
    host, seen = Host(), []

    async def handle(event: Any) -> list[Emit]:
        seen.append(event.image_id)
        await asyncio.sleep(0.001 * (3 - len(seen) % 3))  # uneven work
        return []

    lane = Lane("l", {TP.topic: Bound(Route.each(handle), SPEC)}, host)
    lane.put(0, [record(n) for n in range(10)])
    await drain(lane, host, 10)
    assert host.checkpoint.offsets == list(range(10))
    assert seen == [f"i{n}" for n in range(10)]


async def test_a_batch_takes_what_waits_and_each_event_is_done_alone():
    host, batches = Host(), []

    async def prepare(events: Any) -> Any:
        batches.append([e.image_id for e in events])

        async def handle(event: Any) -> list[Emit]:
            return []

        return handle

    route = Route.batched(prepare, max_records=4, window_s=0.05)
    lane = Lane("l", {TP.topic: Bound(route, SPEC)}, host)
    lane.put(0, [record(n) for n in range(6)] + [record(6, b"not an event")])
    await drain(lane, host, 7)
    assert batches == [["i0", "i1", "i2", "i3"], ["i4", "i5"]]
    assert host.checkpoint.offsets == list(range(7))  # the undecodable one: dead-lettered
    assert host.producer.sent[-1][0] == "darkroom.catalog.dlq"


async def test_a_failed_step_is_tried_again_and_nothing_after_it_is_done_first():
    host, calls = Host(), []

    @contextlib.asynccontextmanager
    async def flaky_around() -> AsyncIterator[None]:
        calls.append(len(calls))
        if len(calls) == 2:
            raise RuntimeError("a scheduler bug")
        yield

    async def handle(event: Any) -> list[Emit]:
        return []

    lane = Lane("l", {TP.topic: Bound(Route.each(handle, around=flaky_around), SPEC)}, host)
    lane.put(0, [record(n) for n in range(3)])
    await drain(lane, host, 3)
    assert host.checkpoint.offsets == [0, 1, 2]
    assert len(calls) == 4  # offset 1's step ran twice


async def test_table_writes_reach_the_changelog_before_the_event_is_done():
    host = Host(Producer(fail=2))  # the first two changelog sends are refused
    table = Table("jobs", changelog="t.catalog-jobs-changelog", partitions=1, lane="l")
    table.store(0)
    table.mark_ready(0)

    async def handle(event: Any) -> list[Emit]:
        table[event.image_id] = {"n": 1}
        return []

    lane = Lane("l", {TP.topic: Bound(Route.each(handle), SPEC)}, host)
    lane.put(0, [record(7)])
    await drain(lane, host, 1, timeout_s=10)
    assert host.checkpoint.offsets == [7]
    assert host.producer.sent == [("t.catalog-jobs-changelog", b'{"n":1}')]
    assert table.get("i7") == {"n": 1}


async def test_an_event_of_a_revoked_partition_is_abandoned_uncommitted():
    host = Host(Producer(fail=1000))
    table = Table("jobs", changelog="c", partitions=1, lane="l")
    table.store(0)

    async def handle(event: Any) -> list[Emit]:
        table[event.image_id] = 1
        host.assigned = False  # revoked while the changelog is unreachable
        return []

    lane = Lane("l", {TP.topic: Bound(Route.each(handle), SPEC)}, host)
    lane.put(0, [record(0)])
    lane.start()
    await asyncio.sleep(0.8)
    await lane.stop(0)
    assert host.checkpoint.offsets == []
    assert table.store(0).get(b"i0") is None


def test_a_batched_route_must_be_alone_in_its_lane():
    async def prepare(events: Any) -> Any:
        return None

    batched = Bound(Route.batched(prepare, max_records=2, window_s=0), SPEC)
    with pytest.raises(ValueError, match="alone in its lane"):
        Lane("l", {"a": batched, "b": batched}, Host())
