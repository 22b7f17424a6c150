"""``upload_stream``: what it stores and produces, and that a refused upload stores nothing."""

from __future__ import annotations

import asyncio

import pytest

from darkroom_common.errors import InvalidUpload
from darkroom_common.storage import FilesystemStore
from darkroom_common.uploads import UploadPublisher, upload_stream
from darkroom_ingest.testing import read_events
from darkroom_schemas import UploadedV1

pytestmark = pytest.mark.kafka


async def chunks(data: bytes):
    yield data


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
