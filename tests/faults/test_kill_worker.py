"""kill -9 of a render worker mid-batch: the consumer group redelivers, nothing is lost."""

from __future__ import annotations

import asyncio
import time

import pytest

from darkroom_cli.commands.dlq import read_letters
from darkroom_cli.tracker import JobTracker
from darkroom_imaging.profiles import load_profile

from ..conftest import start_pipeline
from .checks import API_ENV, PHOTOS, read_topic, record, verify_outcome

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]


async def wait_for_event(bootstrap: str, topic: str, timeout_s: float) -> None:
    """Return once ``topic`` holds at least one record; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not await read_topic(bootstrap, topic):
        assert time.monotonic() < deadline, f"nothing on {topic} within {timeout_s} s"
        await asyncio.sleep(0.1)


def test_render_worker_killed_mid_batch_loses_nothing(kafka_bootstrap, tmp_path):
    pipeline = start_pipeline(kafka_bootstrap, tmp_path, env=API_ENV)
    specs = load_profile("default").specs
    done_topic = f"{pipeline.prefix}variant-done"
    try:

        async def scenario():
            tracker = JobTracker(pipeline.bootstrap, topic_prefix=pipeline.prefix)
            await tracker.start()
            try:
                uploads = [  # 12 distinct photos in two galleries
                    *await pipeline.upload(PHOTOS[:6], gallery="kill-a"),
                    *await pipeline.upload(PHOTOS[6:], gallery="kill-b"),
                ]
                await wait_for_event(pipeline.bootstrap, done_topic, 120)
                victim = next(p for p in pipeline.services.processes if p.name == "variants")
                pipeline.services.kill(victim)
                done_before = len(await read_topic(pipeline.bootstrap, done_topic))
                started = time.monotonic()
                pipeline.services.start("variants")
                ends = await tracker.wait(
                    [u.job_id for u in uploads],
                    timeout_s=300,
                    should_abort=lambda: next(
                        (f"{p.name} exited" for p in pipeline.services.exited() if p is not victim),
                        None,
                    ),
                )
                recovery_s = time.monotonic() - started
                report = await verify_outcome(
                    pipeline,
                    uploads,
                    ends,
                    fault="render worker SIGKILL mid-batch",
                    recovery_s=recovery_s,
                )
                done = await read_topic(pipeline.bootstrap, done_topic)
                letters = await read_letters(pipeline.bootstrap, pipeline.prefix)
                return uploads, report, done_before, done, letters
            finally:
                await tracker.stop()

        uploads, report, done_before, done, letters = asyncio.run(scenario())
        record(report)
        reused = sum(e.provenance.get("reused") == "true" for e in done)
        print(
            f"\nrender worker killed after {done_before} of {len(uploads) * len(specs)} variants: "
            f"{report.complete}/{len(uploads)} jobs complete {report.recovery_s:.1f} s after the restart; "
            f"{len(done)} variant-done events ({reused} answered from an already stored object)"
        )
        assert 0 < done_before < len(uploads) * len(specs), "the kill did not land mid-batch"
        assert not report.problems
        assert not letters, [d.summary() for d in letters]  # nothing was dead-lettered
        assert report.complete == len(uploads) >= 12
        # Redelivered requests are answered again for the same key: never a second object.
        keys = {e.object_key for e in done if e.status == "done"}
        assert len(keys) == len(uploads) * len(specs)
    finally:
        pipeline.stop()
