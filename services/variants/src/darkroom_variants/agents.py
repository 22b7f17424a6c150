"""Faust wiring of the variants stage: the planner and the render workers.

Both agents run in every variants process, in one consumer group
(``darkroom-variants``): adding a process takes over a share of the partitions
with no configuration change. The render agent takes the requests waiting in
its partitions together (``take_events``) and groups them by source, so one
decode serves all variants of an image while each request is still retried and
reported on its own; offsets are committed only after the batch is handled.
The planner takes a gallery's profile from the gallery-settings cache when the
event names none. A third agent honours ``image-deleted``: every object under
``variants/<gallery>/<image>/`` is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from faust.types import StreamT

from darkroom_common.deletes import attach_image_deletes
from darkroom_common.errors import BrokerUnavailable
from darkroom_common.gallery_settings import GallerySettingsCache, cache_for
from darkroom_common.stage import Emit, SourceRef, StageRunner
from darkroom_common.storage import ObjectStore, open_store
from darkroom_schemas import ValidatedV1, VariantDoneV1, VariantRequestedV1
from darkroom_variants.planner import plan, plannable
from darkroom_variants.settings import VariantsSettings
from darkroom_variants.worker import Renderer, group_by_source, reuse

log = logging.getLogger(__name__)


async def plan_event(
    event: Any, settings: VariantsSettings, galleries: GallerySettingsCache
) -> list[Emit]:
    """The planner's handler: a plannable ``validated`` → its requests (or a failed ``variant-done``).

    The gallery's ``profile`` setting applies when the event names no profile.

    Raises:
        BrokerUnavailable: the gallery settings were not read in time (retriable).
    """
    if not isinstance(event, ValidatedV1) or not plannable(event):
        return []
    gallery_profile = None
    if event.profile is None:
        try:
            await galleries.ready(settings.gallery_settings_wait_s)
        except TimeoutError as exc:
            raise BrokerUnavailable(
                f"the gallery-settings topic was not read within {settings.gallery_settings_wait_s:g} s"
            ) from exc
        gallery_profile = galleries.get(event.gallery_id).profile
    planned = plan(
        event,
        default_profile=settings.default_profile,
        profiles_dir=settings.profiles_dir,
        gallery_profile=gallery_profile,
    )
    if isinstance(planned, VariantDoneV1):
        return [Emit("variant-done", planned)]
    return [Emit("variant-requested", r) for r in planned]


def attach(app: faust.App, settings: VariantsSettings, store: ObjectStore | None = None) -> None:
    """Attach the planner, render and delete agents (and the gallery-settings follower) to ``app``."""
    runner = StageRunner(app, settings, "variants")
    executor = ThreadPoolExecutor(settings.render_threads, thread_name_prefix="render")
    galleries = cache_for(app, settings)

    @app.agent(app.topic(settings.topic("validated")), name="planner")
    async def planner(stream: StreamT[Any]) -> None:
        async def handle(event: Any) -> list[Emit]:
            return await plan_event(event, settings, galleries)

        async for event in stream.events():
            await runner.process(event, handle)

    attach_image_deletes(app, runner, settings, "variants", store)

    gate = LiveFirst(quiet_s=settings.replay_quiet_s)

    @app.agent(app.topic(settings.topic("variant-requested")), name="render")
    async def render_agent(stream: StreamT[Any]) -> None:
        objects = store or open_store(settings.storage)
        renderer = Renderer(objects, settings, executor)
        try:
            batches = stream.take_events(  # type: ignore[attr-defined]
                settings.batch_max, within=settings.batch_window_s
            )
            async for events in batches:
                with gate.live():
                    await reuse_or_render(runner, renderer, events, same_source=True)
        finally:
            if store is None:
                await objects.close()

    @app.agent(app.topic(settings.topic("replay.validated")), name="replay-planner")
    async def replay_planner(stream: StreamT[Any]) -> None:
        async def handle(event: Any) -> list[Emit]:
            return plan_replay(await plan_event(event, settings, galleries))

        async for event in stream.events():
            await runner.process(event, handle)

    @app.agent(app.topic(settings.topic("replay.variant-requested")), name="replay-render")
    async def replay_render(stream: StreamT[Any]) -> None:
        objects = store or open_store(settings.storage)
        renderer = Renderer(objects, settings, executor)
        try:
            batches = stream.take_events(  # type: ignore[attr-defined]
                settings.replay_batch_max, within=settings.batch_window_s
            )
            async for events in batches:
                await gate.wait_idle()
                await reuse_or_render(runner, renderer, events)
        finally:
            if store is None:
                await objects.close()


def plan_replay(planned: list[Emit]) -> list[Emit]:
    """Route a replayed image's variant requests to the replay lane (other emits unchanged)."""
    return [
        Emit("replay.variant-requested", e.value) if e.topic == "variant-requested" else e
        for e in planned
    ]


async def reuse_or_render(
    runner: StageRunner, renderer: Renderer, events: list[Any], *, same_source: bool = False
) -> None:
    """Handle request events: reuse what is already rendered, render the rest.

    A request whose deterministic key (image, variant, spec hash) already holds
    an object is answered ``done`` from it at once (see :func:`reuse`). In the
    replay lane, adding one variant to a profile thus renders only that variant.
    In the live lane (``same_source``), a request redelivered after a crash is
    answered from the object its first render wrote: a render depends on the
    batch it was in (shrink-on-load to the batch's largest size), so rendering
    again would overwrite the object with other bytes than the ``variant-done``
    the catalog already recorded. A store that cannot tell leaves the request to the
    render path (:func:`reuse`).
    """
    fresh = []
    for event in events:
        request = event.value
        done = (
            await reuse(renderer.store, request, same_source=same_source)
            if isinstance(request, VariantRequestedV1)
            else None
        )
        if done is None:
            fresh.append(event)
            continue
        m = event.message
        source = SourceRef(m.topic, m.partition, m.offset, m.key, m.value or b"")

        async def answer(_: Any, done: VariantDoneV1 = done) -> list[Emit]:
            return [Emit("variant-done", done)]

        await runner.process_value(request, source, answer)
    if fresh:
        await handle_batch(runner, renderer, fresh)


class LiveFirst:
    """Lets the replay lane render only while live requests leave the workers idle.

    Live batches run inside :meth:`live`; the replay renderer awaits
    :meth:`wait_idle` before each (small) batch: no live batch running and none
    finished in the last ``quiet_s`` seconds. A backfill therefore delays a live
    upload by at most one replay batch.
    """

    def __init__(self, quiet_s: float) -> None:
        self.quiet_s = quiet_s
        self._active = 0
        self._last = 0.0

    @contextlib.contextmanager
    def live(self) -> Iterator[None]:
        """Mark a live batch as running."""
        self._active += 1
        try:
            yield
        finally:
            self._active -= 1
            self._last = time.monotonic()

    async def wait_idle(self) -> None:
        """Return once no live batch ran for ``quiet_s`` seconds."""
        while self._active or time.monotonic() - self._last < self.quiet_s:  # noqa: ASYNC110 - a clock condition
            await asyncio.sleep(0.05)


async def handle_batch(runner: StageRunner, renderer: Renderer, events: list[Any]) -> None:
    """Render a batch of request events: one decode per source, one outcome per request."""
    requests = [e.value for e in events if isinstance(e.value, VariantRequestedV1)]
    batches = {id(r): b for b in group_by_source(requests) for r in b.requests}
    rendered: set[int] = set()

    for event in events:
        value = event.value
        m = event.message
        source = SourceRef(m.topic, m.partition, m.offset, m.key, m.value or b"")

        async def handle(request: Any) -> list[Emit]:
            if not isinstance(request, VariantRequestedV1):
                raise TypeError(f"expected VariantRequestedV1, got {type(request).__name__}")
            batch = batches[id(request)]
            key = (request.variant, request.spec_hash)
            if id(batch) not in rendered:
                rendered.add(id(batch))
                await renderer.render_batch(batch)
            outcome = batch.outcomes.get(key)
            if outcome is None:  # the shared render failed (e.g. the store): this variant alone
                outcome = batch.outcomes[key] = await renderer.render_one(request)
            return [Emit("variant-done", await renderer.publish(request, outcome))]

        await runner.process_value(value, source, handle)
