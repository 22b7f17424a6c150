"""Producing ``uploaded`` events: the helper any upload API uses to feed Darkroom.

An upload is two steps: the original goes to the object store under its
deterministic key, then an :class:`UploadedV1` is sent to the ``uploaded`` topic
through an :class:`~darkroom_common.ports.EventProducer` (the idempotent
:class:`~darkroom_common.producer.KafkaEventProducer`, ``acks=all``), keyed by
image_id::

    async with UploadPublisher(bootstrap) as publisher:
        event = await upload_file(store, publisher, Path("IMG_1.CR2"), gallery_id="trip")

The event is sent only after the object is stored, so a consumer never sees an
upload whose bytes are missing.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Literal, Self

from pydantic import ValidationError

from darkroom_common.errors import InvalidUpload
from darkroom_common.metrics import Metrics
from darkroom_common.objects import original_key, put_counted
from darkroom_common.ports import EventProducer
from darkroom_common.producer import KafkaEventProducer
from darkroom_common.storage import ObjectStore, PutData
from darkroom_schemas import UploadedV1

Source = Literal["api", "presigned", "s3-notification", "cli", "replay"]


def new_id() -> str:
    """Return a fresh id: 32 hex digits of a random UUID (valid in keys and events)."""
    return uuid.uuid4().hex


class UploadPublisher(KafkaEventProducer):
    """The event producer of your own upload API: a :class:`KafkaEventProducer` that may
    write ``uploaded`` only.

    Args:
        bootstrap: Kafka bootstrap servers, ``host:port[,host:port…]``.
        topic_prefix: the deployment's topic prefix (``darkroom.``).
        client_id: the Kafka client id.

    Attributes:
        started: whether the producer is connected (between :meth:`start` and :meth:`stop`).
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        topic_prefix: str = "darkroom.",
        client_id: str = "darkroom-upload-publisher",
    ) -> None:
        super().__init__(
            bootstrap, topic_prefix=topic_prefix, allowed=("uploaded",), client_id=client_id
        )

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def publish(self, event: UploadedV1) -> None:
        """Send ``event`` to ``uploaded`` keyed by its image_id; wait for the broker's ack.

        Raises:
            BrokerUnavailable: the broker did not acknowledge it (retriable).
        """
        await self.send("uploaded", event)


def uploaded_event(
    *,
    gallery_id: str,
    image_id: str,
    object_key: str,
    filename: str,
    size_bytes: int,
    content_type: str | None = None,
    profile: str | None = None,
    source: Source = "api",
) -> UploadedV1:
    """Return the :class:`UploadedV1` for an original already stored under ``object_key``.

    The job id is the image id (one job per image; retries are its attempts);
    the correlation id is fresh.

    Raises:
        pydantic.ValidationError: an id is not an ``Identifier`` or a field is out of range.
    """
    return UploadedV1(
        job_id=image_id,
        gallery_id=gallery_id,
        image_id=image_id,
        correlation_id=new_id(),
        object_key=object_key,
        filename=filename,
        size_bytes=size_bytes,
        content_type=content_type,
        profile=profile,
        source=source,
    )


async def upload_stream(
    store: ObjectStore,
    producer: EventProducer,
    chunks: PutData,
    *,
    gallery_id: str,
    filename: str,
    image_id: str | None = None,
    profile: str | None = None,
    source: Source = "api",
    content_type: str | None = None,
    metrics: Metrics | None = None,
) -> UploadedV1:
    """Stream ``chunks`` into the store as a new image of ``gallery_id``, then send its event.

    Only one chunk (S3: one multipart part) is held in memory. If ``chunks``
    raises midway (e.g. a size limit enforced by the caller), the exception
    propagates unchanged and no object is left behind (``ObjectStore.put`` is
    atomic). If the event cannot be sent, the stored object is deleted.

    Args:
        producer: sends the event with ``await producer.send("uploaded", event)``.
        image_id: the new image's id; a fresh one when ``None``.
        metrics: where the bytes stored are counted; default the process registry's.

    Returns:
        The :class:`UploadedV1` that was produced.

    Raises:
        StorageUnavailable: the object store failed.
        BrokerUnavailable: the event could not be produced (the object was removed).
        InvalidKey: ``gallery_id`` or ``image_id`` cannot be part of a key.
        InvalidUpload: a field cannot form an ``uploaded`` event (e.g. a file name
            over 1,024 characters); nothing was stored.
        ConfigurationError: ``producer`` may not write ``uploaded`` (the object was removed).
    """
    image_id = image_id or new_id()
    # A name that is not valid UTF-8 (a lone surrogate from a non-UTF-8 file
    # system) keeps its readable part; the event is checked before any byte is
    # stored, so a refused upload leaves no orphaned original behind.
    filename = filename.encode("utf-8", "replace").decode("utf-8")
    key = original_key(gallery_id, image_id, filename)
    try:
        draft = uploaded_event(
            gallery_id=gallery_id,
            image_id=image_id,
            object_key=key,
            filename=filename,
            size_bytes=0,
            content_type=content_type,
            profile=profile,
            source=source,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "upload"
        raise InvalidUpload(f"The upload's {field} is not valid: {error['msg']}.") from None
    counted = metrics if metrics is not None else Metrics.of()
    info = await put_counted(store, key, chunks, counted, content_type=content_type)
    event = draft.model_copy(update={"size_bytes": info.size})
    try:
        await producer.send("uploaded", event)
    except BaseException:
        await store.delete(key)
        raise
    return event


async def upload_file(
    store: ObjectStore,
    producer: EventProducer,
    path: Path,
    *,
    gallery_id: str,
    filename: str | None = None,
    profile: str | None = None,
    source: Source = "cli",
    content_type: str | None = None,
    metrics: Metrics | None = None,
) -> UploadedV1:
    """Store the file at ``path`` as a new image of ``gallery_id`` and send its upload event.

    Args:
        producer: sends the event (see :func:`upload_stream`).
        metrics: where the bytes stored are counted; default the process registry's.

    Returns:
        The :class:`UploadedV1` that was produced: a fresh image id (which is also
        the job id: one job per image, retries are its attempts) and correlation id.

    Raises:
        StorageUnavailable: the object store failed.
        BrokerUnavailable: the event could not be produced (the object was removed).
        OSError: ``path`` cannot be read.
    """
    with path.open("rb") as f:
        return await upload_stream(
            store,
            producer,
            f,
            gallery_id=gallery_id,
            filename=filename or path.name,
            profile=profile,
            source=source,
            content_type=content_type,
            metrics=metrics,
        )
