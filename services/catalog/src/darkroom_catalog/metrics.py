"""Catalog gauges: jobs by status and the age of the oldest job in processing.

Each catalog worker counts the jobs of the partitions it holds, every
:data:`REFRESH_S` seconds; sum ``darkroom_jobs`` and take the max of
``darkroom_job_oldest_processing_seconds`` across workers (the dashboard and
alert rules in ``deploy/`` do). Deleted jobs are not counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import ClassVar

from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from darkroom_catalog.jobs import JobState
from darkroom_common.metrics import metric_name

REFRESH_S = 15.0
STATUSES = ("queued", "processing", "complete", "failed")


def job_figures(jobs: Iterable[JobState], now: datetime) -> tuple[dict[str, int], float]:
    """Return ``({status: jobs}, seconds the oldest processing job has been processing)``.

    The age is measured from the job's ``created_at`` (its upload), the same
    clock a photographer waits on; 0.0 when no job is processing.
    """
    counts: Counter[str] = Counter({s: 0 for s in STATUSES})
    oldest = 0.0
    for job in jobs:
        if job.deleted_at is not None:
            continue
        counts[job.status] += 1
        if job.status == "processing":
            oldest = max(oldest, (now - job.created_at).total_seconds())
    return dict(counts), oldest


class JobGauges:
    """The two gauges, registered once per registry."""

    _instances: ClassVar[dict[int, JobGauges]] = {}

    def __init__(self, registry: CollectorRegistry) -> None:
        self.jobs = Gauge(metric_name("jobs"), "Jobs this catalog worker holds, by status.",
                          ["service", "status"], registry=registry)  # fmt: skip
        self.oldest = Gauge(
            metric_name("job", "oldest", "processing", "seconds"),
            "Seconds since the oldest job still in processing was created (0 when none).",
            ["service"],
            registry=registry,
        )
        self.update([], datetime.now().astimezone())  # exported from the start, not after a tick

    @classmethod
    def for_registry(cls, registry: CollectorRegistry = REGISTRY) -> JobGauges:
        """Return the gauges of ``registry``, creating them once."""
        if id(registry) not in cls._instances:
            cls._instances[id(registry)] = cls(registry)
        return cls._instances[id(registry)]

    def update(self, jobs: Iterable[JobState], now: datetime) -> None:
        """Set both gauges from ``jobs``."""
        counts, oldest = job_figures(jobs, now)
        for status, n in counts.items():
            self.jobs.labels("catalog", status).set(n)
        self.oldest.labels("catalog").set(oldest)
