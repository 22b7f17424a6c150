"""Jobs-by-status and oldest-processing figures, and the gauges they set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest

from darkroom_catalog.jobs import JobState
from darkroom_catalog.metrics import JobGauges, job_figures

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def job(status: str, age_s: float, deleted: bool = False) -> JobState:
    created = NOW - timedelta(seconds=age_s)
    return JobState(job_id="j", image_id="i", gallery_id="g", correlation_id="c", status=status,
                    created_at=created, updated_at=created, deleted_at=NOW if deleted else None)  # fmt: skip


def test_counts_by_status_and_the_oldest_processing_age():
    counts, oldest = job_figures(
        [
            job("processing", 30),
            job("processing", 900),
            job("complete", 5),
            job("failed", 1),
            job("processing", 5000, deleted=True),
        ],
        NOW,
    )
    assert counts == {"queued": 0, "processing": 2, "complete": 1, "failed": 1}
    assert oldest == 900


def test_no_processing_job_means_zero():
    assert job_figures([job("complete", 99)], NOW) == (
        {"queued": 0, "processing": 0, "complete": 1, "failed": 0},
        0.0,
    )


def test_gauges_export_under_the_naming_rule():
    registry = CollectorRegistry()
    gauges = JobGauges.for_registry(registry)
    assert JobGauges.for_registry(registry) is gauges
    gauges.update([job("queued", 1), job("processing", 60)], NOW)
    text = generate_latest(registry).decode()
    assert 'darkroom_jobs{service="catalog",status="queued"} 1.0' in text
    assert 'darkroom_job_oldest_processing_seconds{service="catalog"} 60.0' in text
