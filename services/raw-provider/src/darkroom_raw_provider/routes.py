"""The raw-provider stage's routes (see ``darkroom topics graph``).

* ``validated``: an accepted RAW original → its JPEG master's ``validated``,
  developed by the provider the gallery's ``processing_provider`` names (``local`` or
  ``imagen``).
* ``image-deleted``: every object under ``masters/<gallery>/<image>/`` removed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from darkroom_common.objects import delete_image_objects
from darkroom_common.ports import Ports
from darkroom_raw_provider.develop import DevelopHandler
from darkroom_raw_provider.providers import RawProvider
from darkroom_runtime import Emit, Route
from darkroom_schemas import ImageDeletedV1

log = logging.getLogger(__name__)


def routes(ports: Ports, providers: Mapping[str, RawProvider]) -> dict[str, Route]:
    """Return the stage's handlers by consumed topic."""
    develop = DevelopHandler(
        providers, ports.gallery_settings, ports.metrics, ports.clock, store=ports.store
    )

    async def on_validated(event: Any) -> list[Emit]:
        return [Emit("validated", master) for master in await develop(event)]

    async def on_deleted(event: Any) -> list[Emit]:
        if isinstance(event, ImageDeletedV1):
            removed = await delete_image_objects(
                ports.store, "masters", event.gallery_id, event.image_id
            )
            log.info("deleted the image's masters", extra={"objects": removed})
        return []

    return {"validated": Route.each(on_validated), "image-deleted": Route.each(on_deleted)}
