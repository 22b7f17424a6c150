"""The variants stage's routes (see ``darkroom topics graph``).

* ``validated``: a plannable image → one ``variant-requested`` per spec of its
  profile (or a failed ``variant-done``: ``unknown_profile``).
* ``variant-requested``: rendered in batches, one decode per source; a request
  redelivered after a crash is answered from the object its first render wrote.
* ``replay.validated``: planned again, onto ``replay.variant-requested``.
* ``replay.variant-requested``: reused by spec, or rendered, only while the live
  lane is idle (:class:`~darkroom_variants.scheduler.LiveFirst`).
* ``image-deleted``: every object under ``variants/<gallery>/<image>/`` removed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any

from darkroom_common.objects import delete_image_objects
from darkroom_common.ports import Ports
from darkroom_imaging.profiles import ProfileCatalog
from darkroom_runtime import Emit, Handler, Prepare, Route
from darkroom_schemas import ImageDeletedV1, VariantDoneV1
from darkroom_variants.batch import RenderBatch
from darkroom_variants.planner import Plan, Planner
from darkroom_variants.scheduler import LiveFirst
from darkroom_variants.settings import VariantsSettings
from darkroom_variants.worker import Renderer

log = logging.getLogger(__name__)


def routes(
    ports: Ports,
    settings: VariantsSettings,
    executor: Executor,
    *,
    catalog: ProfileCatalog | None = None,
    gate: LiveFirst | None = None,
) -> dict[str, Route]:
    """Return the stage's handlers by consumed topic.

    Args:
        executor: the thread pool rendering runs on.
        catalog: the profiles; default those of ``settings.profiles_dir``.
        gate: the live-first scheduler of the two render lanes; default one on
            ``settings.replay_quiet_s`` and ``ports.clock``.
    """
    planner = Planner(
        catalog or ProfileCatalog(settings.profiles_dir),
        ports.gallery_settings,
        settings.default_profile,
    )
    renderer = Renderer(ports.store, settings, executor, ports.metrics)
    gate = gate or LiveFirst(settings.replay_quiet_s, ports.clock)

    async def plan(event: Any) -> list[Emit]:
        return _emits(await planner(event), "variant-requested")

    async def plan_replay(event: Any) -> list[Emit]:
        return _emits(await planner(event), "replay.variant-requested")

    def render(*, same_source: bool) -> Prepare:
        async def prepare(events: Sequence[Any]) -> Handler:
            batch = RenderBatch(renderer, events, same_source=same_source)

            async def handle(event: Any) -> list[Emit]:
                return [Emit("variant-done", await batch(event))]

            return handle

        return prepare

    async def delete(event: Any) -> list[Emit]:
        if isinstance(event, ImageDeletedV1):
            removed = await delete_image_objects(
                ports.store, "variants", event.gallery_id, event.image_id
            )
            log.info("deleted the image's variants", extra={"objects": removed})
        return []

    return {
        "validated": Route.each(plan),
        "variant-requested": Route.batched(
            render(same_source=True),
            max_records=settings.batch_max,
            window_s=settings.batch_window_s,
            around=gate.live,
        ),
        "image-deleted": Route.each(delete),
        "replay.validated": Route.each(plan_replay),
        "replay.variant-requested": Route.batched(
            render(same_source=False),
            max_records=settings.replay_batch_max,
            window_s=settings.batch_window_s,
            around=gate.replay,
        ),
    }


def _emits(planned: Plan, requests_to: str) -> list[Emit]:
    if isinstance(planned, VariantDoneV1):
        return [Emit("variant-done", planned)]
    return [Emit(requests_to, request) for request in planned]
