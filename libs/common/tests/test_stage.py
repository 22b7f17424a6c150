"""StageRunner without a broker: a transient error is retried and counted, an ok event counted."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from darkroom_common.errors import StorageUnavailable
from darkroom_common.faust_app import create_app
from darkroom_common.metrics import Metrics
from darkroom_common.settings import DarkroomSettings
from darkroom_common.stage import SourceRef, StageRunner
from darkroom_schemas import UploadedV1

SOURCE = SourceRef("darkroom.uploaded", 0, 1, b"i", b"")
EVENT = UploadedV1(
    job_id="i",
    gallery_id="g",
    image_id="i",
    correlation_id="c",
    object_key="k",
    filename="f.jpg",
    size_bytes=1,
)


async def test_transient_error_is_retried_and_every_step_is_counted(tmp_path):
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    settings = DarkroomSettings(data_dir=tmp_path, retry_base_delay_s=0.001)
    runner = StageRunner(create_app("t-stage", settings), settings, "ingest", metrics)
    calls = []

    async def flaky(value):
        calls.append(value)
        if len(calls) < 3:
            raise StorageUnavailable("the store said 503")
        return []

    assert await runner.process_value(EVENT, SOURCE, flaky) is True
    assert len(calls) == 3

    def sample(name, **labels):
        return registry.get_sample_value(name, labels) or 0.0

    assert sample("darkroom_retries_total", service="ingest", reason="storage_unavailable") == 2
    assert (
        sample(
            "darkroom_events_total",
            service="ingest",
            topic="darkroom.uploaded",
            direction="in",
            outcome="ok",
        )
        == 1
    )
    assert sample("darkroom_stage_duration_seconds_count", service="ingest", stage="ingest") == 1
