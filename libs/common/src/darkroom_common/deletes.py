"""The ``image-deleted`` agent a stage runs to remove the objects it wrote for an image."""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.types import StreamT

from darkroom_common.objects import ImageObjects, delete_image_objects
from darkroom_common.settings import DarkroomSettings
from darkroom_common.stage import Emit, StageRunner
from darkroom_common.storage import ObjectStore, open_store
from darkroom_schemas import ImageDeletedV1

log = logging.getLogger(__name__)


def attach_image_deletes(
    app: faust.App,
    runner: StageRunner,
    settings: DarkroomSettings,
    kind: ImageObjects,
    store: ObjectStore | None = None,
) -> None:
    """Add an agent on ``image-deleted`` deleting the image's objects under ``kind``.

    Every event goes through ``runner`` (retries, dead letters); the delete is
    idempotent, so a redelivered event is harmless.
    """

    @app.agent(app.topic(settings.topic("image-deleted")), name="delete")
    async def delete_agent(stream: StreamT[Any]) -> None:
        objects = store or open_store(settings.storage)

        async def handle(event: Any) -> list[Emit]:
            if isinstance(event, ImageDeletedV1):
                removed = await delete_image_objects(
                    objects, kind, event.gallery_id, event.image_id
                )
                log.info("deleted the image's objects", extra={"kind": kind, "objects": removed})
            return []

        try:
            async for event in stream.events():
                await runner.process(event, handle)
        finally:
            if store is None:
                await objects.close()
