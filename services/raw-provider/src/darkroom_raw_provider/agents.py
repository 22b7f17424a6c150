"""Faust wiring of the raw-provider stage.

* ``develop``: ``validated`` (an accepted RAW original) → ``validated`` (its JPEG
  master), developed by the provider the gallery's ``processing_provider`` names
  (``local`` or ``imagen``), read from the gallery-settings cache.
* ``delete``: ``image-deleted`` → every object under ``masters/<gallery>/<image>/`` removed.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.types import StreamT

from darkroom_common.deletes import attach_image_deletes
from darkroom_common.gallery_settings import cache_for
from darkroom_common.stage import Emit, StageRunner
from darkroom_common.storage import ObjectStore, open_store
from darkroom_raw_provider.develop import DevelopHandler, LocalProvider
from darkroom_raw_provider.imagen import ImagenProvider
from darkroom_raw_provider.providers import RawProvider
from darkroom_raw_provider.settings import RawProviderSettings

log = logging.getLogger(__name__)


def attach(app: faust.App, settings: RawProviderSettings, store: ObjectStore | None = None) -> None:
    """Attach the develop and delete agents (and the gallery-settings follower) to ``app``."""
    runner = StageRunner(app, settings, "raw-provider")
    galleries = cache_for(app, settings)

    @app.agent(app.topic(settings.topic("validated")), name="develop")
    async def develop_agent(stream: StreamT[Any]) -> None:
        objects = store or open_store(settings.storage)
        providers: dict[str, RawProvider] = {
            "local": LocalProvider(objects, settings),
            "imagen": ImagenProvider(objects, settings.imagen, work_dir=settings.work_dir),
        }
        handler = DevelopHandler(providers, galleries, wait_s=settings.gallery_settings_wait_s)

        async def handle(event: Any) -> list[Emit]:
            return [Emit("validated", out) for out in await handler(event)]

        try:
            async for event in stream.events():
                await runner.process(event, handle)
        finally:
            for provider in providers.values():
                await provider.aclose()
            if store is None:
                await objects.close()

    attach_image_deletes(app, runner, settings, "masters", store)
