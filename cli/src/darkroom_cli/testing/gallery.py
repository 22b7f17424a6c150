"""Test support: a fresh gallery-settings topic and a running cache that mirrors it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaProducer

from darkroom_common.gallery_settings import GallerySettingsCache, publish_gallery_settings
from darkroom_common.topics import create_topics, layouts
from darkroom_schemas import GallerySettingsV1
from darkroom_schemas.topics import TOPICS


@contextlib.asynccontextmanager
async def gallery_settings(
    bootstrap: str, *events: GallerySettingsV1
) -> AsyncIterator[GallerySettingsCache]:
    """Yield a :class:`GallerySettingsCache` following a new topic that holds ``events``."""
    prefix = f"gs{uuid.uuid4().hex[:8]}."
    await create_topics(bootstrap, layouts(prefix, 1, specs=[TOPICS["gallery-settings"]]))
    topic = f"{prefix}gallery-settings"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            await publish_gallery_settings(producer, topic, event)
    finally:
        await producer.stop()
    cache = GallerySettingsCache(bootstrap, topic)
    task = asyncio.create_task(cache.run())
    try:
        yield cache
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
