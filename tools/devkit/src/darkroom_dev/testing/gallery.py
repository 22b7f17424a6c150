"""Test support: a fresh gallery-settings topic and a running cache that mirrors it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from darkroom_common.gallery_settings import GallerySettingsCache
from darkroom_common.producer import KafkaEventProducer
from darkroom_common.topics import create_topics, layouts
from darkroom_schemas import GallerySettingsV1
from darkroom_schemas.topics import TOPICS


@contextlib.asynccontextmanager
async def gallery_settings(
    bootstrap: str, *events: GallerySettingsV1, wait_s: float = 30.0
) -> AsyncIterator[GallerySettingsCache]:
    """Yield a started :class:`GallerySettingsCache` following a new topic that holds ``events``."""
    prefix = f"gs{uuid.uuid4().hex[:8]}."
    await create_topics(bootstrap, layouts(prefix, 1, specs=[TOPICS["gallery-settings"]]))
    async with KafkaEventProducer(bootstrap, topic_prefix=prefix) as producer:
        for event in events:
            await producer.send("gallery-settings", event)
    cache = GallerySettingsCache(bootstrap, f"{prefix}gallery-settings", wait_s=wait_s)
    await cache.start()
    try:
        yield cache
    finally:
        await cache.stop()
