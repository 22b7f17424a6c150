"""The catalog stage: its two tables, its routes and the read helpers of its API.

* ``jobs`` (keyed by ``image_id``) is written by one lane, ``jobs``, that handles
  ``uploaded``, ``validated``, ``variant-requested``, ``variant-done`` (and their
  replay lanes) and ``image-deleted``; all are keyed by ``image_id``, so the table is
  co-partitioned with them. Each event goes through :func:`darkroom_catalog.jobs.apply`
  (or :func:`~darkroom_catalog.jobs.apply_deleted`); a terminal transition is sent to
  ``cataloged``. Every applied write reaches the job's live watchers (the API's
  Server-Sent Events).
* ``galleries`` (keyed by ``gallery_id``) is written by the ``galleries`` lane from
  ``catalog.cataloged-by-gallery``, the repartition of ``cataloged`` and
  ``image-deleted`` by gallery_id, so that table is co-partitioned with the stream
  that writes it.

The runtime sends a handler's events first and persists its table writes only once
they were acknowledged: if sending ``cataloged`` fails, the job is not terminal in the
table yet and the retried or redelivered event sends it again (same ``event_id``), so
it is never lost. A crash between the two acknowledgements would send that
``cataloged`` twice; the :class:`~darkroom_catalog.fence.CatalogedFence`, loaded before
a partition's records flow, knows it is on the topic already and it is not sent again.

Tables store JSON dicts under ``str`` keys (raw UTF-8), in RocksDB, each with a
compacted changelog ``<prefix>catalog-<table>-changelog``: the names and encodings
the Faust release used, so its state is read as is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from darkroom_catalog.fence import CatalogedFence
from darkroom_catalog.galleries import GalleryState, apply_cataloged, apply_image_deleted
from darkroom_catalog.jobs import JOB_EVENTS, JobState, apply, apply_deleted
from darkroom_catalog.metrics import JobGauges
from darkroom_common.errors import PoisonEvent
from darkroom_common.metrics import Metrics
from darkroom_common.ports import Clock
from darkroom_runtime import Emit, Route, StageApp, Table
from darkroom_schemas import CatalogedV1, ImageDeletedV1
from darkroom_schemas.topics import stage

STAGE = "catalog"
JOBS_TABLE = "jobs"
GALLERIES_TABLE = "galleries"
log = logging.getLogger(__name__)


JOBS_LANE = "jobs"
GALLERIES_LANE = "galleries"


class Catalog:
    """The catalog stage on one worker: tables, handlers and read helpers.

    Args:
        app: the catalog's worker (``store="rocksdb"`` in production).
        clock: for the job gauges' ages.
        gauges: the ``darkroom_jobs`` gauges to refresh.
        metrics: counts ``cataloged`` repeats not sent
            (``darkroom_redelivery_reused_total{service="catalog",kind="cataloged"}``).
    """

    def __init__(
        self, app: StageApp, clock: Clock, gauges: JobGauges, metrics: Metrics | None = None
    ) -> None:
        self.app = app
        self.clock = clock
        self.gauges = gauges
        self.metrics = metrics
        self.jobs: Table = app.table(JOBS_TABLE, lane=JOBS_LANE)
        self.galleries: Table = app.table(GALLERIES_TABLE, lane=GALLERIES_LANE)
        self._watchers: dict[str, set[asyncio.Queue[JobState]]] = {}
        self.jobs.on_change(self._notify)
        self.fence = CatalogedFence(
            app.settings.kafka_bootstrap_servers,
            changelog=self.jobs.changelog,
            cataloged=app.settings.topic("cataloged"),
            client_id=app.group_id,
        )
        app.on_partition_ready(self.fence.load)
        self.lane_lock = asyncio.Lock()
        """Held by the jobs lane around each event (handler, sends and changelog acks) and by
        the reconciler around its writes, so the two never interleave on a job."""

    def routes(self) -> dict[str, Route]:
        """The stage's handlers by consumed topic (see ``darkroom topics graph``)."""
        job_topics = [r.topic for r in stage(STAGE).routes if r.emits == ("cataloged",)]

        def exclusive() -> asyncio.Lock:
            return self.lane_lock

        return {
            **{
                t: Route.each(self.on_job_event, lane=JOBS_LANE, around=exclusive)
                for t in job_topics
            },
            "image-deleted": Route.each(self.on_image_deleted, lane=JOBS_LANE, around=exclusive),
            "cataloged": Route.each(self.forward_by_gallery, lane=GALLERIES_LANE),
            "catalog.cataloged-by-gallery": Route.each(self.on_gallery_event, lane=GALLERIES_LANE),
        }

    async def refresh_gauges(self) -> None:
        """Recount the jobs of the partitions this worker holds (see :mod:`darkroom_catalog.metrics`)."""
        jobs = [JobState.from_json(v) for v in list(self.jobs.values()) if v is not None]
        self.gauges.update(jobs, self.clock.now())

    @contextlib.contextmanager
    def watch(self, image_id: str) -> Iterator[asyncio.Queue[JobState]]:
        """Yield a queue that receives every new state of the job of ``image_id``, in order.

        Only writes applied by this worker arrive (the partition must be local);
        register before reading the current state so no change is missed.
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

    def _notify(self, image_id: Any, value: Any) -> None:
        if value is None:
            return
        job = JobState.from_json(value)
        for queue in self._watchers.get(str(image_id), ()):
            queue.put_nowait(job)

    def get_job(self, image_id: str) -> JobState | None:
        """Return the job of ``image_id`` held by this worker, or ``None``.

        Only the partitions assigned to this worker (and restored) are local; a reader
        for another worker's keys must be routed there (:meth:`StageApp.locate`).
        """
        data = self.jobs.get(image_id)
        return JobState.from_json(data) if data is not None else None

    def get_gallery(self, gallery_id: str) -> GalleryState | None:
        """Return the gallery ``gallery_id`` held by this worker, or ``None`` (see :meth:`get_job`)."""
        data = self.galleries.get(gallery_id)
        return GalleryState.from_json(data) if data is not None else None

    def put_job(self, current: JobState | None, new: JobState) -> None:
        """Write ``new`` over ``current`` (inside a jobs-lane handler), one :attr:`~JobState.version` up."""
        new.version = (current.version if current is not None else 0) + 1
        self.jobs[new.image_id] = new.to_json()

    async def on_job_event(self, value: Any) -> Sequence[Emit]:
        """Apply one pipeline event to its job; return the ``cataloged`` it causes.

        Raises:
            PoisonEvent: not a job event (dead-lettered).
        """
        if not isinstance(value, JOB_EVENTS):
            raise PoisonEvent(
                f"{type(value).__name__} is not a job event", reason_code="unexpected_event"
            )
        current = self.get_job(value.image_id)
        new, cataloged = apply(current, value)
        if new is current:
            log.info("ignored a duplicate, stale or late event")
            return []
        self.put_job(current, new)
        log.info("job %s", new.status, extra={"status": new.status, "attempt": new.attempts})
        return self.unsent(cataloged)

    def unsent(self, cataloged: Sequence[CatalogedV1]) -> list[Emit]:
        """Return the emits of those of ``cataloged`` that are not on the topic already.

        A repeat (the :class:`~darkroom_catalog.fence.CatalogedFence` read its
        ``event_id`` on the job's partition of ``cataloged``) is logged and counted.
        """
        emits = []
        for event in cataloged:
            if self.fence.already_sent(self.app.partition_of(event.image_id), event):
                log.warning(
                    "cataloged already on the topic; not sent again",
                    extra={"image_id": event.image_id, "event_id": str(event.event_id)},
                )
                if self.metrics is not None:
                    self.metrics.redelivery_reused.labels(STAGE, "cataloged").inc()
                continue
            emits.append(Emit("cataloged", event))
        return emits

    async def on_image_deleted(self, value: Any) -> Sequence[Emit]:
        """Mark the job deleted; forward the delete to the gallery's partition.

        Raises:
            PoisonEvent: not an ``image-deleted`` event (dead-lettered).
        """
        if not isinstance(value, ImageDeletedV1):
            raise PoisonEvent(
                f"{type(value).__name__} is not an image-deleted event",
                reason_code="unexpected_event",
            )
        current = self.get_job(value.image_id)
        if (deleted := apply_deleted(current, value)) is not None:
            self.put_job(current, deleted)
        return [Emit("catalog.cataloged-by-gallery", value)]

    async def forward_by_gallery(self, value: Any) -> Sequence[Emit]:
        """Repartition a ``cataloged`` event by gallery_id.

        Raises:
            PoisonEvent: not a ``cataloged`` event (dead-lettered).
        """
        if not isinstance(value, CatalogedV1):
            raise PoisonEvent(
                f"{type(value).__name__} is not a cataloged event", reason_code="unexpected_event"
            )
        return [Emit("catalog.cataloged-by-gallery", value)]

    async def on_gallery_event(self, value: Any) -> Sequence[Emit]:
        """Apply a cataloged or image-deleted event to its gallery (see :mod:`.galleries`).

        Raises:
            PoisonEvent: neither (dead-lettered).
        """
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
            self.galleries[new.gallery_id] = new.to_json()
        return []
