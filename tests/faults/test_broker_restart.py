"""The only broker killed (SIGKILL) mid-run for 10 s, then restarted on its ports and state.

The session broker is shared by every test, so this test runs its own
:class:`LocalKafka`. Every service must ride out the outage (the runtime retries and
aiokafka reconnects); a service that exits fails the test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from darkroom_cli.commands.dlq import read_letters
from darkroom_cli.tracker import JobTracker
from darkroom_dev.local.kafka import LocalKafka
from darkroom_dev.testing.kafka import free_ports

from ..conftest import start_pipeline
from .checks import API_ENV, PHOTOS, record, verify_outcome

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

OUTAGE_S = 10


def kill(broker: LocalKafka) -> None:
    """SIGKILL the broker's process group and wait until it is gone."""
    pid = broker.pid()
    assert pid is not None, "the broker is not running"
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while broker.pid() is not None:
        assert time.monotonic() < deadline, "the killed broker did not exit"
        time.sleep(0.1)


def test_broker_killed_mid_run_and_restarted_loses_nothing(tmp_path):
    broker = LocalKafka(tmp_path / "kafka", *free_ports(2))
    broker.start()
    pipeline = None
    try:
        pipeline = start_pipeline(broker.bootstrap, tmp_path / "pipeline", env=API_ENV)

        async def scenario():
            tracker = JobTracker(pipeline.bootstrap, topic_prefix=pipeline.prefix)
            await tracker.start()
            try:
                uploads = [  # 12 distinct photos in two galleries
                    *await pipeline.upload(PHOTOS[:6], gallery="broker-a"),
                    *await pipeline.upload(PHOTOS[6:], gallery="broker-b"),
                ]
                ids = [u.job_id for u in uploads]
                deadline = time.monotonic() + 120
                while not tracker.ends:  # mid-run: after the first job ended
                    assert time.monotonic() < deadline, "no job ended before the fault"
                    await tracker.wait(ids, timeout_s=0.5, should_abort=pipeline.died)
                ended_before = len(tracker.ends)
                await asyncio.to_thread(kill, broker)
                await asyncio.sleep(OUTAGE_S)
                assert pipeline.died() is None, "a service exited during the outage"
                await asyncio.to_thread(broker.start)
                back = time.monotonic()
                ends = await tracker.wait(ids, timeout_s=240, should_abort=pipeline.died)
                recovery_s = time.monotonic() - back
                report = await verify_outcome(
                    pipeline,
                    uploads,
                    ends,
                    fault=f"broker SIGKILL, down {OUTAGE_S} s, restarted",
                    recovery_s=recovery_s,
                )
                letters = await read_letters(pipeline.bootstrap, pipeline.prefix)
                return uploads, ended_before, report, letters
            finally:
                await tracker.stop()

        uploads, ended_before, report, letters = asyncio.run(scenario())
        record(report)
        print(
            f"\nbroker killed after {ended_before} of {len(uploads)} jobs ended, down {OUTAGE_S} s: "
            f"{report.complete}/{len(uploads)} complete {report.recovery_s:.1f} s after it was back"
        )
        assert ended_before < len(uploads), "the fault did not land mid-run"
        assert not report.problems
        assert not letters, [d.summary() for d in letters]  # nothing was dead-lettered
        assert report.complete == len(uploads)
    finally:
        if pipeline is not None:
            pipeline.stop()
        broker.stop()
