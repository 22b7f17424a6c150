"""Faust wiring of the raw-provider stage: ``validated`` (RAW) → ``validated`` (master)."""

from __future__ import annotations

from typing import Any

import faust
from faust.types import StreamT

from darkroom_common.stage import Emit, StageRunner
from darkroom_common.storage import ObjectStore, open_store
from darkroom_raw_provider.develop import develop_raw, wants
from darkroom_raw_provider.settings import RawProviderSettings
from darkroom_schemas import ValidatedV1


def attach(app: faust.App, settings: RawProviderSettings, store: ObjectStore | None = None) -> None:
    """Attach the develop agent to ``app``."""
    runner = StageRunner(app, settings, "raw-provider")
    validated = app.topic(settings.topic("validated"))

    @app.agent(validated, name="develop")
    async def develop_agent(stream: StreamT[Any]) -> None:
        objects = store or open_store(settings.storage)

        async def handle(event: Any) -> list[Emit]:
            if not isinstance(event, ValidatedV1) or not wants(event):
                return []
            return [Emit("validated", await develop_raw(event, store=objects, settings=settings))]

        try:
            async for event in stream.events():
                await runner.process(event, handle)
        finally:
            if store is None:
                await objects.close()
