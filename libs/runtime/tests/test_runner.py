"""RecordRunner: retries counted, attempts start from clean table writes, refusals dead-lettered."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import CollectorRegistry

from darkroom_common.errors import StorageUnavailable
from darkroom_common.metrics import Metrics
from darkroom_common.producer import KafkaEventProducer
from darkroom_common.settings import DarkroomSettings
from darkroom_common.topics import create_topics, layouts, read_to_end
from darkroom_runtime import Emit
from darkroom_runtime.runner import RecordRunner, SourceRef, decode_value
from darkroom_runtime.tables import RecordScope, Table
from darkroom_schemas import DeadLetterV1, UploadedV1, decode, encode
from darkroom_schemas.topics import stage, topics_for_stage

SOURCE = SourceRef("darkroom.uploaded", 0, 1, b"i", b"")
EVENT = UploadedV1(
    job_id="i",
    gallery_id="g",
    image_id="i",
    correlation_id="c",
    object_key="k",
    filename="f.jpg",
    size_bytes=1,
)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_transient_error_is_retried_from_clean_writes_and_every_step_is_counted(tmp_path):
    registry = CollectorRegistry()
    settings = DarkroomSettings(data_dir=tmp_path, retry_base_delay_s=0.001)
    producer = KafkaEventProducer("unused:9092")  # nothing is sent: never started
    runner = RecordRunner(stage("ingest"), settings, producer, Metrics(registry))
    table = Table("t", changelog="c", partitions=1, lane="l")
    scope = RecordScope(partition=0, lane="l")
    calls = []

    async def flaky(value):
        assert table.get("k") is None  # the failed attempt's write is gone
        table["k"] = len(calls)
        calls.append(value)
        if len(calls) < 3:
            raise StorageUnavailable("the store said 503")
        return []

    with scope.active():
        assert await runner.process(EVENT, SOURCE, flaky, allowed=(), scope=scope) is True
    assert len(calls) == 3
    assert table.pending(scope) == [(b"k", b"2")]
    assert (
        sample(registry, "darkroom_retries_total", service="ingest", reason="storage_unavailable")
        == 2
    )
    assert (
        sample(
            registry,
            "darkroom_events_total",
            service="ingest",
            topic="darkroom.uploaded",
            direction="in",
            outcome="ok",
        )
        == 1
    )
    assert (
        sample(registry, "darkroom_stage_duration_seconds_count", service="ingest", stage="ingest")
        == 1
    )


def test_bytes_that_are_not_an_event_decode_to_an_undecodable_value():
    value = decode_value(b"\x00\x00\x00\x00\x07junk")
    assert value.payload == b"\x00\x00\x00\x00\x07junk"
    assert "cannot decode" in value.error
    assert decode_value(encode(EVENT)) == EVENT


@pytest.mark.kafka
async def test_undeclared_emits_and_garbage_are_dead_lettered_and_nothing_is_sent(
    kafka_bootstrap, tmp_path
):
    prefix = f"rn{uuid.uuid4().hex[:8]}."
    await create_topics(kafka_bootstrap, layouts(prefix, 1, 1, topics_for_stage("ingest")))
    registry = CollectorRegistry()
    settings = DarkroomSettings(
        kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, data_dir=tmp_path
    )
    table = Table("t", changelog="c", partitions=1, lane="l")
    scope = RecordScope(partition=0, lane="l")

    async def sends_elsewhere(value):
        table["k"] = 1
        return [Emit("validated", value), Emit("cataloged", value)]

    async with KafkaEventProducer(kafka_bootstrap, topic_prefix=prefix) as producer:
        runner = RecordRunner(stage("ingest"), settings, producer, Metrics(registry))
        with scope.active():
            handled = await runner.process(
                EVENT, SOURCE, sends_elsewhere, allowed=("validated",), scope=scope
            )
        assert handled is False
        assert scope.writes == {}  # a dead-lettered event leaves no state behind
        garbage = decode_value(b"garbage")
        assert await runner.process(garbage, SOURCE, sends_elsewhere, allowed=()) is False
    letters = [decode(r.value) async for r in read_to_end(kafka_bootstrap, [f"{prefix}ingest.dlq"])]
    assert [(d.reason_code, d.error_class) for d in letters] == [
        ("undeclared_emit", "UndeclaredEmit"),
        ("schema_error", "SchemaError"),
    ]
    assert all(isinstance(d, DeadLetterV1) and d.stage == "ingest" for d in letters)
    assert "cataloged" in letters[0].error_message
    assert [r async for r in read_to_end(kafka_bootstrap, [f"{prefix}validated"])] == []
