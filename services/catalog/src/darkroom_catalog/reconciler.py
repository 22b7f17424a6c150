"""The catalog's reconciler: no job stays ``queued`` or ``processing`` for ever.

Defence in depth behind the runtime's at-least-once delivery. Every
``reconcile_interval_s`` each catalog worker looks at the jobs of the partitions it
holds; a job is *stale* when it is non-terminal, its ``updated_at`` (event time) is
older than ``reconcile_after_s``, and this worker has seen it unchanged (same
:attr:`~darkroom_catalog.jobs.JobState.version`) for that long on its own clock. For
the stale jobs it

1. reads the topics the jobs lane consumes again (``uploaded``, ``validated``,
   ``variant-requested``, ``variant-done`` and the replay topics), from a little before
   the oldest stale job's ``created_at`` (Kafka's offsets-for-times), keeping the
   records keyed by those image_ids;
2. applies them, in timestamp order, through the jobs lane's own handler
   (:meth:`Catalog.on_job_event`, idempotent: an event already applied is dropped by its
   ``event_id``), while holding the jobs lane's lock, so no live event interleaves;
3. a job that is still ``processing`` and took nothing from step 2 is failed with
   reason ``stalled`` (:func:`~darkroom_catalog.jobs.apply_stalled`): its inputs are not
   on the topics (lost, expired, or a render that will never be answered). A ``queued``
   job is never failed: manual mode and the per-gallery concurrency limit hold jobs
   queued on purpose.

Writes go the runtime's way: the ``cataloged`` events are sent and acknowledged, then
the table writes go to the changelog and, acknowledged, to the local store. Outcomes
are counted in ``darkroom_reconciler_jobs_total{outcome=finished|advanced|failed_stalled}``
(``DarkroomReconcilerFoundJobs`` alerts on any), runs in ``darkroom_reconciler_runs_total``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from darkroom_catalog.jobs import JOB_EVENTS, STALLED, JobEvent, JobState, apply_stalled
from darkroom_catalog.routes import JOBS_LANE, STAGE, Catalog
from darkroom_catalog.settings import CatalogSettings
from darkroom_common.metrics import Metrics
from darkroom_common.ports import Clock
from darkroom_common.topics import read_to_end
from darkroom_runtime import Emit, StageApp
from darkroom_runtime.lanes import write_through
from darkroom_runtime.tables import RecordScope
from darkroom_schemas import WireFormatError, decode
from darkroom_schemas.topics import stage

log = logging.getLogger(__name__)

LOOKBACK = timedelta(minutes=5)
"""How far before the oldest stale job's ``created_at`` the topics are read again."""


@dataclass
class Reconciled:
    """What one run did: image_ids by outcome (``finished``, ``advanced``, ``failed_stalled``)."""

    stale: int = 0
    outcomes: dict[str, list[str]] = field(default_factory=dict)


class Reconciler:
    """Finds the stale jobs of this worker's partitions and finishes or fails them.

    Args:
        app: the catalog worker (partition ownership, producer, runner).
        catalog: the stage (tables, the jobs lane's handler and lock).
        settings: ``reconcile_after_s`` and the cluster.
        metrics: where runs and outcomes are counted.
        clock: the wall clock (``completed_at`` of a stalled job) and monotonic clock.
    """

    def __init__(
        self,
        app: StageApp,
        catalog: Catalog,
        settings: CatalogSettings,
        metrics: Metrics,
        clock: Clock,
    ) -> None:
        self.app = app
        self.catalog = catalog
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self._seen: dict[str, tuple[int, float]] = {}
        self.topics = [
            r.topic for r in stage(STAGE).routes if r.emits == ("cataloged",)
        ]  # the job topics

    def stale(self) -> list[JobState]:
        """Return the non-terminal jobs held here that are stale (see the module docstring)."""
        now, mono = self.clock.now(), self.clock.monotonic()
        bound = self.settings.reconcile_after_s
        seen: dict[str, tuple[int, float]] = {}
        stale = []
        for value in list(self.catalog.jobs.values()):
            if value is None:
                continue
            job = JobState.from_json(value)
            if job.terminal or job.deleted_at is not None:
                continue
            version, since = self._seen.get(job.image_id, (job.version, mono))
            if version != job.version:
                since = mono
            seen[job.image_id] = (job.version, since)
            if mono - since >= bound and (now - job.updated_at).total_seconds() >= bound:
                stale.append(job)
        self._seen = seen
        return stale

    async def run(self) -> Reconciled:
        """One pass (the periodic task). Never raises for one bad job: it is logged.

        Raises:
            BrokerUnavailable: the topics cannot be read (the timer logs it; next run retries).
        """
        self.metrics.reconciler_runs.labels(STAGE).inc()
        report = Reconciled()
        stale = self.stale()
        report.stale = len(stale)
        if not stale:
            return report
        since = min(j.created_at for j in stale) - LOOKBACK
        inputs = await self._inputs({j.image_id for j in stale}, since)
        async with self.catalog.lane_lock:
            for job in stale:
                try:
                    outcome = await self._reconcile(job, inputs.get(job.image_id, []))
                except Exception:
                    log.exception("reconciling a job failed", extra={"image_id": job.image_id})
                    continue
                if outcome is not None:
                    report.outcomes.setdefault(outcome, []).append(job.image_id)
                    self.metrics.reconciler_jobs.labels(STAGE, outcome).inc()
                    log.warning(
                        "reconciled a stale job",
                        extra={"image_id": job.image_id, "job_id": job.job_id, "outcome": outcome},
                    )
        return report

    async def _inputs(self, image_ids: set[str], since: Any) -> dict[str, list[JobEvent]]:
        keys = {i.encode(): i for i in image_ids}
        found: list[tuple[int, str, JobEvent]] = []
        topics = [self.settings.topic(t) for t in self.topics]
        async for record in read_to_end(self.settings.kafka_bootstrap_servers, topics, since=since):
            image_id = keys.get(record.key or b"")
            if image_id is None:
                continue
            try:
                event = decode(record.value or b"")
            except WireFormatError:
                continue  # the live lane dead-letters it; nothing to apply
            if isinstance(event, JOB_EVENTS):
                found.append((record.timestamp, image_id, event))
        found.sort(key=lambda f: f[0])  # as the lane merges its topics: by timestamp
        out: dict[str, list[JobEvent]] = {}
        for _, image_id, event in found:
            out.setdefault(image_id, []).append(event)
        return out

    async def _reconcile(self, stale: JobState, events: Sequence[JobEvent]) -> str | None:
        partition = self.app.partition_of(stale.image_id)
        if self.app.locate(partition).where != "here":
            return None  # moved to another worker since; it reconciles there
        current = self.catalog.get_job(stale.image_id)
        if current is None or current.version != stale.version:
            return None  # it moved on by itself
        scope = RecordScope(partition, JOBS_LANE)
        emits: list[Emit] = []
        with scope.active():
            for event in events:
                emits += await self.catalog.on_job_event(event)
            job = self.catalog.get_job(stale.image_id)
            assert job is not None
            outcome: str | None = None
            if job.version != current.version:
                outcome = "finished" if job.terminal else "advanced"
            elif job.status == "processing":
                message = (
                    f"no progress for {self.settings.reconcile_after_s:.0f} s and no "
                    "input left on the topics to apply; retry the job"
                )
                failed, cataloged = apply_stalled(job, self.clock.now(), message)
                self.catalog.put_job(job, failed)
                emits += self.catalog.unsent(cataloged)
                outcome = f"failed_{STALLED}"
        if outcome is None:
            return None
        await self.app.runner.send(emits, allowed=("cataloged",))
        await write_through(self.app.producer, scope)
        return outcome
