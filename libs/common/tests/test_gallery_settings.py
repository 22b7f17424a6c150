"""Every worker sees every gallery's settings through the compacted topic, and updates."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from darkroom_common.gallery_settings import GallerySettingsCache
from darkroom_common.ports import GallerySettings, GallerySettingsUnavailable
from darkroom_common.producer import KafkaEventProducer
from darkroom_common.topics import create_topics, layouts
from darkroom_schemas import GallerySettingsV1
from darkroom_schemas.topics import TOPICS

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def view(settings: GallerySettingsV1) -> tuple[str, str, str]:
    return settings.gallery_id, settings.processing_mode, settings.processing_provider


async def eventually(cache: GallerySettingsCache, gallery: str, mode: str) -> GallerySettingsV1:
    for _ in range(100):
        if (current := await cache.get(gallery)).processing_mode == mode:
            return current
        await asyncio.sleep(0.1)
    raise AssertionError(f"{gallery} never became {mode}")


async def test_two_workers_read_the_topic_whole_and_follow_updates(kafka_bootstrap):
    prefix = f"gs{uuid.uuid4().hex[:8]}."
    await create_topics(kafka_bootstrap, layouts(prefix, 1, specs=[TOPICS["gallery-settings"]]))
    topic = f"{prefix}gallery-settings"
    async with KafkaEventProducer(kafka_bootstrap, topic_prefix=prefix) as producer:
        await producer.send(
            "gallery-settings",
            GallerySettingsV1(
                gallery_id="g1", processing_mode="manual", processing_provider="imagen"
            ),
        )
        early, late = (
            GallerySettingsCache(kafka_bootstrap, topic),
            GallerySettingsCache(kafka_bootstrap, topic),
        )
        assert isinstance(early, GallerySettings)
        await early.start()
        try:
            assert view(await early.get("g1")) == ("g1", "manual", "imagen")
            assert view(await early.get("g2")) == ("g2", "auto", "local")  # never configured
            await producer.send("gallery-settings", GallerySettingsV1(gallery_id="g1"))
            assert view(await eventually(early, "g1", "auto")) == ("g1", "auto", "local")
            await late.start()  # a worker started after the update reads it from the topic
            assert view(await late.get("g1")) == ("g1", "auto", "local")
        finally:
            await early.stop()
            await late.stop()


async def test_get_waits_once_and_raises_the_one_retriable_error(kafka_bootstrap):
    never = GallerySettingsCache(kafka_bootstrap, "no-such-topic-is-ever-read", wait_s=0.2)
    with pytest.raises(GallerySettingsUnavailable) as caught:
        await never.get("g1")
    assert caught.value.retriable
    assert caught.value.reason_code == "settings_unavailable"


def test_a_tombstone_resets_a_gallery_and_garbage_is_skipped():
    cache = GallerySettingsCache("unused:9092", "t")
    from darkroom_schemas import encode

    cache.apply(b"g1", encode(GallerySettingsV1(gallery_id="g1", processing_mode="manual")))
    assert cache.current("g1").processing_mode == "manual"
    cache.apply(b"g1", b"not avro")
    assert cache.current("g1").processing_mode == "manual"
    cache.apply(b"g1", None)
    assert cache.current("g1").processing_mode == "auto"
