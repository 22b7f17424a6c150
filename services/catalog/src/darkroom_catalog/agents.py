"""The catalog's Faust wiring: two tables, two agents and the read helpers.

* ``jobs`` (keyed by ``image_id``) is written by the agent that consumes
  ``uploaded``, ``validated``, ``variant-requested``, ``variant-done`` and
  ``image-deleted``; all are keyed by ``image_id``, so the table is
  co-partitioned with them. Each event goes through
  :func:`darkroom_catalog.jobs.apply` (or :func:`~darkroom_catalog.jobs.apply_deleted`);
  a terminal transition is sent to ``cataloged``. Every write is also handed
  to the job's live watchers (the Server-Sent Events of the API).
* ``galleries`` (keyed by ``gallery_id``) is written by the agent that consumes
  ``cataloged`` and ``image-deleted`` regrouped by ``gallery_id`` (Faust
  ``group_by``, through the registry topic ``catalog.cataloged-by-gallery``),
  so that table is co-partitioned with the stream that writes it.

Every event goes through :meth:`StageRunner.process` (retries, dead letters).
A table is written only after the handler's output was acknowledged by the
broker: if sending ``cataloged`` fails, the job is not yet terminal in the
table and the retried or redelivered event sends it again (with the same
``event_id``). A crash between the send and the table write can therefore
send one cataloged event twice; never zero times.

Tables store JSON dicts (``value_serializer="json"``), raw ``str`` keys, in
RocksDB through rocksdict, with a compacted changelog topic
``<app id>-<table>-changelog`` on the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import faust
from faust.types import TableT

from darkroom_catalog.galleries import GalleryState, apply_cataloged, apply_image_deleted
from darkroom_catalog.jobs import JOB_EVENTS, JobState, apply, apply_deleted
from darkroom_catalog.metrics import REFRESH_S, JobGauges
from darkroom_catalog.settings import CatalogSettings
from darkroom_common.errors import PoisonEvent
from darkroom_common.metrics import Metrics
from darkroom_common.stage import Emit, StageRunner
from darkroom_schemas import CatalogedV1, ImageDeletedV1
from darkroom_schemas.topics import stage

STAGE = "catalog"
JOBS_TABLE = "jobs"
GALLERIES_TABLE = "galleries"
BY_GALLERY = "by-gallery"
"""Suffix of the repartition topic of the gallery stream."""

log = logging.getLogger(__name__)


def _gallery_key(value: Any) -> str:
    # Undecodable values keep flowing (with an empty key) so the gallery agent dead-letters them.
    return value.gallery_id if isinstance(value, CatalogedV1 | ImageDeletedV1) else ""


def json_table(app: faust.App, name: str, partitions: int, help: str) -> TableT[str, Any]:
    """Return a table of JSON-ready dicts under ``str`` keys, stored as raw UTF-8 bytes.

    faust-streaming 0.15.3 derives a table's serializers from its key and value
    types (``str`` keys would be JSON-quoted); they are set explicitly here
    because the app's default value codec only encodes schema models.
    """
    table_cls: Any = app.conf.Table  # faust types this setting loosely
    table = table_cls(
        app,
        name=name,
        key_type=str,
        value_type=None,
        partitions=partitions,
        help=help,
        beacon=app.tables.beacon,
    )
    # Set before the table is registered: registering creates its changelog topic.
    table.key_serializer = "raw"
    table.value_serializer = "json"
    return cast("TableT[str, Any]", app.tables.add(table))


class Catalog:
    """The catalog stage on one Faust app: tables, agents and read helpers.

    Args:
        app: the catalog's Faust app (``store="rocksdb://"`` in production).
        settings: the catalog's settings (topic prefix, partitions, retries).
        metrics: where the stage counts events (default: the process registry).
    """

    def __init__(
        self, app: faust.App, settings: CatalogSettings, metrics: Metrics | None = None
    ) -> None:
        self.app = app
        self.settings = settings
        self.runner = StageRunner(app, settings, STAGE, metrics)
        self.jobs = json_table(app, JOBS_TABLE, settings.topic_partitions, "JobState by image_id")
        self.galleries = json_table(
            app, GALLERIES_TABLE, settings.topic_partitions, "GalleryState by gallery_id"
        )
        self._watchers: dict[str, set[asyncio.Queue[JobState]]] = {}
        job_topics = [t for t in stage(STAGE).consumes if t != "cataloged"]
        self.inputs = app.topic(*(settings.topic(t) for t in job_topics))
        # A registry topic, created with the others before the worker starts.
        self.by_gallery = app.topic(settings.topic("catalog.cataloged-by-gallery"))
        gallery_inputs = app.topic(settings.topic("cataloged"), settings.topic("image-deleted"))
        app.agent(self.inputs, name=f"{STAGE}.jobs")(self._jobs_agent)
        app.agent(gallery_inputs, name=f"{STAGE}.galleries")(self._galleries_agent)
        self.gauges = JobGauges.for_registry()
        app.timer(REFRESH_S)(self.refresh_gauges)

    async def refresh_gauges(self) -> None:
        """Recount the jobs of the partitions this worker holds (see :mod:`darkroom_catalog.metrics`)."""
        jobs = [JobState.from_json(v) for v in list(self.jobs.values()) if v is not None]
        self.gauges.update(jobs, datetime.now(UTC))

    @contextlib.contextmanager
    def watch(self, image_id: str) -> Iterator[asyncio.Queue[JobState]]:
        """Yield a queue that receives every new state of the job of ``image_id``, in order.

        Only writes made by this worker's jobs agent arrive (the partition must
        be local); register before reading the current state so no change is missed.
        """
        queue: asyncio.Queue[JobState] = asyncio.Queue()
        self._watchers.setdefault(image_id, set()).add(queue)
        try:
            yield queue
        finally:
            watchers = self._watchers.get(image_id, set())
            watchers.discard(queue)
            if not watchers:
                self._watchers.pop(image_id, None)

    def _store_job(self, job: JobState) -> None:
        self.jobs[job.image_id] = job.to_json()
        for queue in self._watchers.get(job.image_id, ()):
            queue.put_nowait(job)

    def get_job(self, image_id: str) -> JobState | None:
        """Return the job of ``image_id`` held by this worker, or ``None``.

        Only the partitions assigned to this worker are local; a reader for
        another worker's keys must be routed there (Faust ``table_route``).
        """
        data = self.jobs.get(image_id)
        return JobState.from_json(data) if data is not None else None

    def get_gallery(self, gallery_id: str) -> GalleryState | None:
        """Return the gallery ``gallery_id`` held by this worker, or ``None`` (see :meth:`get_job`)."""
        data = self.galleries.get(gallery_id)
        return GalleryState.from_json(data) if data is not None else None

    async def _jobs_agent(self, stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            await self.on_job_event(event)

    async def _galleries_agent(self, stream: faust.StreamT[Any]) -> None:
        async for event in stream.group_by(
            _gallery_key, name=BY_GALLERY, topic=self.by_gallery
        ).events():
            await self.on_gallery_event(event)

    async def on_job_event(self, event: faust.types.EventT) -> bool:
        """Apply one input event to its job; send and store the outcome.

        Returns:
            ``False`` when the event went to the dead-letter topic (undecodable,
            or not a job event: :class:`PoisonEvent`), else ``True``.
        """
        outcome: list[JobState] = []

        async def handle(value: Any) -> Sequence[Emit]:
            outcome.clear()
            if isinstance(value, ImageDeletedV1):
                if (deleted := apply_deleted(self.get_job(value.image_id), value)) is not None:
                    outcome.append(deleted)
                return []
            if not isinstance(value, JOB_EVENTS):
                raise PoisonEvent(
                    f"{type(value).__name__} is not a job event", reason_code="unexpected_event"
                )
            current = self.get_job(value.image_id)
            new, cataloged = apply(current, value)
            if new is current:
                log.info("ignored a duplicate, stale or late event")
                return []
            outcome.append(new)
            return [Emit("cataloged", c) for c in cataloged]

        ok = await self.runner.process(event, handle)
        if ok and outcome:
            job = outcome[0]
            self._store_job(job)
            log.info("job %s", job.status, extra={"status": job.status, "attempt": job.attempts})
        return ok

    async def on_gallery_event(self, event: faust.types.EventT) -> bool:
        """Apply a cataloged or image-deleted event to its gallery (see :mod:`.galleries`).

        Returns:
            ``False`` when the event went to the dead-letter topic, else ``True``.
        """
        outcome: list[GalleryState] = []

        async def handle(value: Any) -> Sequence[Emit]:
            outcome.clear()
            current = self.get_gallery(getattr(value, "gallery_id", ""))
            if isinstance(value, ImageDeletedV1):
                new = apply_image_deleted(current, value)
            elif isinstance(value, CatalogedV1):
                new = apply_cataloged(current, value)
            else:
                raise PoisonEvent(
                    f"{type(value).__name__} is not a cataloged or image-deleted event",
                    reason_code="unexpected_event",
                )
            if new is not None:
                outcome.append(new)
            return []

        ok = await self.runner.process(event, handle)
        if ok and outcome:
            self.galleries[outcome[0].gallery_id] = outcome[0].to_json()
        return ok
