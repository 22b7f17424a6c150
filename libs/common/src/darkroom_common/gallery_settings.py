"""Per-gallery processing settings, read by every service from one compacted topic.

The ``gallery-settings`` topic holds the latest :class:`GallerySettingsV1` per
gallery_id (compacted, keyed by gallery_id). Every worker of every stage keeps
the whole topic in memory: a consumer outside any consumer group reads it
from the beginning, is *ready* once it reached the end offsets it saw at start,
then follows new records, so an update made through the catalog API reaches
every worker within moments. A gallery never configured gets the defaults
(``local``, ``auto``, no profile of its own, no concurrency bound).

:class:`GallerySettingsCache` is the :class:`~darkroom_common.ports.GallerySettings`
port: :meth:`~GallerySettingsCache.get` waits (once, up to ``wait_s``) for the topic to
be read and raises :class:`~darkroom_common.ports.GallerySettingsUnavailable` otherwise.
It is built once in each ``app.py`` and started and stopped with the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from darkroom_common.ports import GallerySettingsUnavailable
from darkroom_common.producer import METADATA_MAX_AGE_MS
from darkroom_schemas import GallerySettingsV1, WireFormatError, decode

log = logging.getLogger(__name__)


class GallerySettingsCache:
    """Every gallery's settings, mirrored from the ``gallery-settings`` topic.

    Args:
        bootstrap: the Kafka cluster.
        topic: the broker-side topic name (``<prefix>gallery-settings``).
        wait_s: how long :meth:`get` waits for the topic to be read (seconds).
    """

    def __init__(self, bootstrap: str, topic: str, *, wait_s: float = 30.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.wait_s = wait_s
        self._settings: dict[str, GallerySettingsV1] = {}
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def get(self, gallery_id: str) -> GallerySettingsV1:
        """Return the gallery's settings, or the defaults when it has none.

        Raises:
            GallerySettingsUnavailable: the topic was not read within ``wait_s``.
        """
        try:
            await asyncio.wait_for(self._ready.wait(), self.wait_s)
        except TimeoutError:
            raise GallerySettingsUnavailable(
                f"the gallery-settings topic was not read within {self.wait_s:g} s"
            ) from None
        return self.current(gallery_id)

    def current(self, gallery_id: str) -> GallerySettingsV1:
        """Return what is known of the gallery now, without waiting (defaults when unset)."""
        return self._settings.get(gallery_id) or GallerySettingsV1(gallery_id=gallery_id)

    @property
    def is_ready(self) -> bool:
        """Whether the topic was read up to the end it had when following began."""
        return self._ready.is_set()

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

    async def run(self) -> None:
        """Read the topic from the beginning, then follow it until cancelled."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            metadata_max_age_ms=METADATA_MAX_AGE_MS,
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

    async def start(self) -> None:
        """Start following the topic in a background task (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._follow(), name="gallery-settings")

    async def stop(self) -> None:
        """Stop following the topic."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self) -> None:
        while True:
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker down: keep the last settings, try again
                log.warning("following gallery-settings failed", extra={"error": str(exc)})
                await asyncio.sleep(2.0)


async def _caught_up(consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> bool:
    return bool(await consumer.position(tp) >= end)


__all__ = ["GallerySettingsCache"]
