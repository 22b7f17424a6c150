"""``darkroom dlq``: list, filter, show and requeue dead letters on the real broker."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from darkroom_cli.__main__ import main
from darkroom_common.topics import create_topics, layouts
from darkroom_schemas import DeadLetterV1, UploadedV1, decode, encode

pytestmark = pytest.mark.kafka


def letter(prefix: str, reason: str, payload: bytes, image: str) -> DeadLetterV1:
    return DeadLetterV1(
        event_id=uuid.uuid4().hex, occurred_at=datetime.now(UTC), job_id=image, gallery_id="g", image_id=image,
        correlation_id="c", stage="ingest", source_topic=f"{prefix}uploaded", source_partition=0, source_offset=7,
        key=image.encode(), payload=payload, error_class="StorageUnavailable", reason_code=reason,
        error_message="the store said 503", attempts=4, retriable=True,
    )  # fmt: skip


@pytest.fixture
def dead_letters(kafka_bootstrap):
    prefix = f"dlq{uuid.uuid4().hex[:8]}."
    upload = UploadedV1(
        job_id="img1",
        gallery_id="g",
        image_id="img1",
        correlation_id="c",
        object_key="k",
        filename="a.jpg",
        size_bytes=1,
    )
    letters = [
        letter(prefix, "storage_unavailable", encode(upload), "img1"),
        letter(prefix, "schema_error", b"garbage", "img2"),
    ]

    async def setup() -> None:
        await create_topics(kafka_bootstrap, layouts(prefix, 2))
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for e in letters:
                await producer.send_and_wait(f"{prefix}ingest.dlq", encode(e), key=e.key)
        finally:
            await producer.stop()

    asyncio.run(setup())
    return prefix, letters, upload


def run(capsys, *args: str) -> tuple[int, list[str], str]:
    code = main(["dlq", *args])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


def test_list_filters_by_reason_stage_and_time(kafka_bootstrap, dead_letters, capsys):
    prefix, _letters, _ = dead_letters
    base = ["--bootstrap", kafka_bootstrap, "--prefix", prefix]
    code, lines, _ = run(capsys, "list", *base)
    assert code == 0
    rows = [json.loads(line) for line in lines]
    assert {r["reason"] for r in rows} == {"storage_unavailable", "schema_error"}
    assert rows[0]["source"].startswith(f"{prefix}uploaded[0]@7")
    _, lines, _ = run(capsys, "list", *base, "--reason", "schema_error")
    assert [json.loads(x)["image_id"] for x in lines] == ["img2"]
    _, lines, _ = run(capsys, "list", *base, "--stage", "catalog")
    assert lines == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    _, lines, _ = run(capsys, "list", *base, "--since", future)
    assert lines == []


def test_show_decodes_the_payload_or_gives_it_raw(kafka_bootstrap, dead_letters, capsys):
    prefix, letters, upload = dead_letters
    base = ["--bootstrap", kafka_bootstrap, "--prefix", prefix]
    code, lines, _ = run(capsys, "show", *base, "--id", letters[0].event_id)
    shown = json.loads("\n".join(lines))
    assert code == 0
    assert shown["payload"]["image_id"] == upload.image_id
    _, lines, _ = run(capsys, "show", *base, "--id", letters[1].event_id)
    assert json.loads("\n".join(lines))["payload_base64"] == "Z2FyYmFnZQ=="
    code, _, err = run(capsys, "show", *base, "--id", "nope")
    assert code == 1
    assert "no dead letter" in err


def test_requeue_sends_the_original_payload_back_to_its_source(
    kafka_bootstrap, dead_letters, capsys
):
    prefix, _, upload = dead_letters
    code, lines, _ = run(
        capsys,
        "requeue",
        "--bootstrap",
        kafka_bootstrap,
        "--prefix",
        prefix,
        "--reason",
        "storage_unavailable",
    )
    assert code == 0
    assert json.loads(lines[0]) == {"requeued": 1}

    async def read_source() -> list:
        consumer = AIOKafkaConsumer(
            f"{prefix}uploaded",
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
            group_id=None,
        )
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=5000)
            return [(r.key, decode(r.value)) for rs in batch.values() for r in rs]
        finally:
            await consumer.stop()

    assert asyncio.run(read_source()) == [(b"img1", upload)]


def test_bad_time_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        main(["dlq", "list", "--since", "yesterday"])
    assert "not an ISO 8601 time" in capsys.readouterr().err
