"""Per-gallery processing settings, read by every service from one compacted topic.

The ``gallery-settings`` topic holds the latest :class:`GallerySettingsV1` per
gallery_id (compacted, keyed by gallery_id). Every worker of every stage keeps
the whole topic in memory: a consumer outside any consumer group reads it
from the beginning, is *ready* once it reached the end offsets it saw at start,
then follows new records, so an update made through the catalog API reaches
every worker within moments. A gallery never configured gets the defaults
(``local``, ``auto``, no profile of its own, no concurrency bound).

(Faust's ``GlobalTable`` would do the same, but with a one-partition changelog
beside eight-partition topics its assignor stalls the group join; a plain
consumer is simpler and has no such coupling.)
"""

from __future__ import annotations

import asyncio
import logging

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from darkroom_common.settings import DarkroomSettings
from darkroom_schemas import GallerySettingsV1, WireFormatError, decode, encode

log = logging.getLogger(__name__)


class GallerySettingsCache:
    """Every gallery's settings, mirrored from the ``gallery-settings`` topic.

    Args:
        bootstrap: the Kafka cluster.
        topic: the broker-side topic name (``<prefix>gallery-settings``).
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._settings: dict[str, GallerySettingsV1] = {}
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def get(self, gallery_id: str) -> GallerySettingsV1:
        """Return the gallery's settings, or the defaults when it has none."""
        return self._settings.get(gallery_id) or GallerySettingsV1(gallery_id=gallery_id)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one record: a settings event, or a tombstone (``value`` None) that resets a gallery."""
        if value is None:
            if key is not None:
                self._settings.pop(key.decode(errors="replace"), None)
            return
        try:
            event = decode(value)
        except WireFormatError as exc:
            log.warning(
                "skipping an undecodable gallery-settings record", extra={"error": str(exc)}
            )
            return
        if isinstance(event, GallerySettingsV1):
            self._settings[event.gallery_id] = event

    async def ready(self, timeout_s: float | None = None) -> None:
        """Wait until the topic was read up to the end offsets seen at start."""
        await asyncio.wait_for(self._ready.wait(), timeout_s)

    async def run(self) -> None:
        """Read the topic from the beginning, then follow it until cancelled."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            partitions = [
                TopicPartition(self.topic, p)
                for p in sorted(consumer.partitions_for_topic(self.topic) or {0})
            ]
            consumer.assign(partitions)
            # Explicit offsets: a lazy seek_to_beginning can lose to a "latest" reset.
            for tp, offset in (await consumer.beginning_offsets(partitions)).items():
                consumer.seek(tp, offset)
            ends = await consumer.end_offsets(partitions)
            while True:
                if not self._ready.is_set() and all(
                    [await _caught_up(consumer, tp, end) for tp, end in ends.items()]
                ):
                    self._ready.set()
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        self.apply(record.key, record.value)
        finally:
            await consumer.stop()

    def attach(self, app: faust.App) -> None:
        """Run :meth:`run` as a background task of ``app`` (started and stopped with it)."""

        @app.task
        async def follow_gallery_settings() -> None:
            await self.run()


async def _caught_up(consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> bool:
    return bool(await consumer.position(tp) >= end)


def cache_for(app: faust.App, settings: DarkroomSettings) -> GallerySettingsCache:
    """Return a cache of the deployment's gallery settings, following the topic while ``app`` runs."""
    cache = GallerySettingsCache(
        settings.kafka_bootstrap_servers, settings.topic("gallery-settings")
    )
    cache.attach(app)
    return cache


async def publish_gallery_settings(
    producer: AIOKafkaProducer, topic: str, event: GallerySettingsV1
) -> None:
    """Produce ``event`` to the gallery-settings ``topic`` keyed by gallery_id; wait for the ack."""
    await producer.send_and_wait(topic, encode(event), key=event.gallery_id.encode())


__all__ = ["GallerySettingsCache", "cache_for", "publish_gallery_settings"]
