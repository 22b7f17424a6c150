"""``upload_stream``: what it stores and produces, and that a refused upload stores nothing."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from darkroom_common.errors import BrokerUnavailable, ConfigurationError, InvalidUpload
from darkroom_common.metrics import Metrics
from darkroom_common.storage import FilesystemStore
from darkroom_common.uploads import UploadPublisher, upload_file, upload_stream
from darkroom_ingest.testing import read_events
from darkroom_schemas import UploadedV1, WireRecord


async def chunks(data: bytes):
    yield data


class Recorder:
    """An event producer that keeps what it is sent (or fails, like an unreachable broker)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[tuple[str, WireRecord]] = []

    async def send(self, topic: str, value: WireRecord, *, key: bytes | None = None) -> None:
        if self.fail:
            raise BrokerUnavailable("the broker did not acknowledge an event")
        self.sent.append((topic, value))


async def test_any_event_producer_receives_the_upload_after_its_bytes_are_stored(tmp_path):
    registry = CollectorRegistry()
    producer = Recorder()
    async with FilesystemStore(tmp_path) as store:
        event = await upload_stream(
            store, producer, chunks(b"\xff\xd8\xff"), gallery_id="g1", filename="a.jpg",
            profile="web", metrics=Metrics(registry),
        )  # fmt: skip
        assert await store.get_bytes(event.object_key) == b"\xff\xd8\xff"
    assert producer.sent == [("uploaded", event)]
    assert (event.size_bytes, event.profile, event.source) == (3, "web", "api")
    assert registry.get_sample_value("darkroom_object_bytes_total", {"direction": "write"}) == 3


async def test_an_upload_whose_event_is_not_acknowledged_leaves_no_object(tmp_path, corpus_jpeg):
    async with FilesystemStore(tmp_path) as store:
        with pytest.raises(BrokerUnavailable):
            await upload_file(store, Recorder(fail=True), corpus_jpeg, gallery_id="g1")
        assert [info.key async for info in store.list("")] == []


def test_the_upload_publisher_writes_uploaded_only():
    publisher = UploadPublisher("127.0.0.1:9", topic_prefix="p.")
    assert publisher.topic("uploaded") == "p.uploaded"
    with pytest.raises(ConfigurationError) as refused:
        publisher.topic("validated")
    assert refused.value.reason_code == "topic_not_allowed"


@pytest.mark.kafka
async def test_a_name_beyond_the_event_limit_is_refused_before_anything_is_stored(
    kafka_bootstrap, kafka_prefix, tmp_path
):
    async with (
        FilesystemStore(tmp_path) as store,
        UploadPublisher(kafka_bootstrap, topic_prefix=kafka_prefix) as publisher,
    ):
        with pytest.raises(InvalidUpload) as refused:
            await upload_stream(
                store, publisher, chunks(b"\xff\xd8"), gallery_id="g1", filename="a" * 2000 + ".jpg"
            )
        assert refused.value.reason_code == "invalid_upload"
        assert "filename" in refused.value.message
        assert [info.key async for info in store.list("")] == []


@pytest.mark.kafka
def test_a_name_that_is_not_utf8_keeps_its_readable_part(kafka_bootstrap, kafka_prefix, tmp_path):
    async def upload() -> tuple[UploadedV1, bytes]:
        async with (
            FilesystemStore(tmp_path) as store,
            UploadPublisher(kafka_bootstrap, topic_prefix=kafka_prefix) as publisher,
        ):
            # A Latin-1 name read from a UTF-8 file system: os.fsdecode gives a lone surrogate.
            event = await upload_stream(
                store, publisher, chunks(b"\xff\xd8"), gallery_id="g1", filename="caf\udce9.jpg"
            )
            return event, await store.get_bytes(event.object_key)

    event, stored = asyncio.run(upload())
    assert event.filename == "caf?.jpg"
    assert stored == b"\xff\xd8"
    (produced,) = read_events(kafka_bootstrap, f"{kafka_prefix}uploaded", 1)
    assert produced.filename == "caf?.jpg"
    assert produced.object_key == event.object_key
