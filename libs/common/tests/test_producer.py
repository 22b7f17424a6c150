"""The one event producer: registry names, declared keys, allowed topics, acknowledged sends."""

from __future__ import annotations

import uuid

import pytest

from darkroom_common.errors import BrokerUnavailable, ConfigurationError
from darkroom_common.ports import EventProducer
from darkroom_common.producer import KafkaEventProducer
from darkroom_common.topics import create_topics, layouts, read_to_end
from darkroom_schemas import GallerySettingsV1, UploadedV1, decode
from darkroom_schemas.topics import TOPICS

UPLOAD = UploadedV1(
    job_id="img-1", gallery_id="g-1", image_id="img-1", correlation_id="c",
    object_key="originals/g-1/img-1/a.jpg", filename="a.jpg", size_bytes=3,
)  # fmt: skip


def test_unknown_and_disallowed_topics_are_refused_before_anything_is_sent():
    producer = KafkaEventProducer("unused:9092", topic_prefix="p.", allowed=("uploaded",))
    assert isinstance(producer, EventProducer)
    assert producer.topic("uploaded") == "p.uploaded"
    with pytest.raises(ConfigurationError, match="not a registry topic") as unknown:
        producer.topic("p.uploaded")
    assert unknown.value.reason_code == "no_topic"
    with pytest.raises(ConfigurationError, match="may not write 'validated'") as refused:
        producer.topic("validated")
    assert refused.value.reason_code == "topic_not_allowed"


async def test_sending_before_start_is_a_retriable_error():
    with pytest.raises(BrokerUnavailable):
        await KafkaEventProducer("unused:9092").send("uploaded", UPLOAD)


@pytest.mark.kafka
async def test_events_are_keyed_by_their_topics_declared_field(kafka_bootstrap):
    prefix = f"pr{uuid.uuid4().hex[:8]}."
    specs = [TOPICS["uploaded"], TOPICS["gallery-settings"]]
    await create_topics(kafka_bootstrap, layouts(prefix, 2, 1, specs))
    settings = GallerySettingsV1(gallery_id="g-1", processing_mode="manual")
    async with KafkaEventProducer(kafka_bootstrap, topic_prefix=prefix) as producer:
        await producer.send("uploaded", UPLOAD)
        await producer.send("gallery-settings", settings)
        await producer.send("uploaded", UPLOAD, key=b"explicit")
    records = [
        (r.topic.removeprefix(prefix), r.key, decode(r.value))
        async for r in read_to_end(
            kafka_bootstrap, [f"{prefix}uploaded", f"{prefix}gallery-settings"]
        )
    ]
    assert sorted((t, k) for t, k, _ in records) == [
        ("gallery-settings", b"g-1"),
        ("uploaded", b"explicit"),
        ("uploaded", b"img-1"),
    ]
