"""Producing ``uploaded`` events: the helper any upload API uses to feed Darkroom.

An upload is two steps: the original goes to the object store under its
deterministic key, then an :class:`UploadedV1` is produced to the ``uploaded``
topic with an idempotent producer (``acks=all``), keyed by image_id::

    async with UploadPublisher(bootstrap) as publisher:
        event = await upload_file(store, publisher, Path("IMG_1.CR2"), gallery_id="trip")

The event is produced only after the object is stored, so a consumer never
sees an upload whose bytes are missing.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from darkroom_common.errors import BrokerUnavailable
from darkroom_common.objects import original_key
from darkroom_common.storage import ObjectStore
from darkroom_schemas import UploadedV1, encode

Source = Literal["api", "presigned", "s3-notification", "cli", "replay"]


def new_id() -> str:
    """Return a fresh id: 32 hex digits of a random UUID (valid in keys and events)."""
    return uuid.uuid4().hex


class UploadPublisher:
    """An idempotent aiokafka producer for ``uploaded`` events.

    Args:
        bootstrap: Kafka bootstrap servers, ``host:port[,host:port…]``.
        topic_prefix: the deployment's topic prefix (``darkroom.``).
    """

    def __init__(self, bootstrap: str, *, topic_prefix: str = "darkroom.") -> None:
        self.topic = f"{topic_prefix}uploaded"
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            client_id="darkroom-upload-publisher",
        )

    async def start(self) -> None:
        """Connect to the cluster.

        Raises:
            BrokerUnavailable: the cluster cannot be reached.
        """
        try:
            await self._producer.start()
        except KafkaError as exc:
            await self._producer.stop()
            raise BrokerUnavailable(f"cannot reach the Kafka cluster: {exc}") from exc

    async def stop(self) -> None:
        """Flush pending events and disconnect."""
        await self._producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def publish(self, event: UploadedV1) -> None:
        """Produce ``event`` keyed by its image_id and wait for the broker's acknowledgement.

        Raises:
            BrokerUnavailable: the broker did not acknowledge it (retriable).
        """
        try:
            await self._producer.send_and_wait(
                self.topic, encode(event), key=event.image_id.encode()
            )
        except KafkaError as exc:
            raise BrokerUnavailable(f"could not produce to {self.topic}: {exc}") from exc


async def upload_file(
    store: ObjectStore,
    publisher: UploadPublisher,
    path: Path,
    *,
    gallery_id: str,
    filename: str | None = None,
    profile: str | None = None,
    source: Source = "cli",
    content_type: str | None = None,
) -> UploadedV1:
    """Store the file at ``path`` as a new image of ``gallery_id`` and produce its upload event.

    Returns:
        The :class:`UploadedV1` that was produced: a fresh image id (which is also
        the job id: one job per image, retries are its attempts) and correlation id.

    Raises:
        StorageUnavailable: the object store failed.
        BrokerUnavailable: the event could not be produced.
        OSError: ``path`` cannot be read.
    """
    name = filename or path.name
    image_id = new_id()
    key = original_key(gallery_id, image_id, name)
    with path.open("rb") as f:
        info = await store.put(key, f, content_type=content_type)
    event = UploadedV1(
        job_id=image_id,  # one job per image; retries are its attempts
        gallery_id=gallery_id,
        image_id=image_id,
        correlation_id=new_id(),
        object_key=key,
        filename=name,
        size_bytes=info.size,
        content_type=content_type,
        profile=profile,
        source=source,
    )
    await publisher.publish(event)
    return event
