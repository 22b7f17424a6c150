"""Metric names follow one rule; the families register and export."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from darkroom_common.metrics import Metrics, metric_name


def test_metric_name_rule():
    assert metric_name("events", "total") == "darkroom_events_total"
    assert metric_name("stage", "duration", "seconds") == "darkroom_stage_duration_seconds"


@pytest.mark.parametrize("parts", [("Events",), ("bad-name",), ("",)])
def test_metric_name_rejects_bad_parts(parts):
    with pytest.raises(ValueError, match=r"naming rule|breaks"):
        metric_name(*parts)


def test_families_export_under_darkroom_prefix():
    registry = CollectorRegistry()
    m = Metrics(registry)
    m.events.labels("ingest", "darkroom.uploaded", "in", "ok").inc()
    m.stage_seconds.labels("ingest", "validate").observe(0.02)
    m.failures.labels("ingest", "validate", "truncated").inc()
    text = generate_latest(registry).decode()
    assert (
        'darkroom_events_total{direction="in",outcome="ok",service="ingest",topic="darkroom.uploaded"} 1.0'
        in text
    )
    assert "darkroom_stage_duration_seconds_bucket" in text
    assert 'darkroom_failures_total{reason="truncated"' in text
    names = {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")
    }
    assert all(n.startswith("darkroom_") for n in names)
