"""Workers added and removed mid-run while uploads flow: nothing lost, nothing stuck.

One worker per stage to start with; while three waves of uploads flow, a second ingest,
variants and catalog worker join (their groups rebalance, the catalog's tables move and
are restored), then the first variants and catalog workers stop cleanly (SIGTERM: they
finish the event in hand and commit before their partitions move) and the second ingest
worker is killed (SIGKILL: its uncommitted events are handled again by the first). Every
job must end with its right outcome, once, and every gallery must list each image once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from darkroom_cli.tracker import JobTracker

from .conftest import start_pipeline
from .faults.checks import API_ENV, record, verify_outcome
from .faults.test_state_loss import PHOTOS

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]


def test_workers_joining_and_leaving_mid_run_lose_and_repeat_nothing(kafka_bootstrap, tmp_path):
    pipeline = start_pipeline(kafka_bootstrap, tmp_path, env=API_ENV)
    group = pipeline.services
    first = {p.name: p for p in group.processes}
    try:

        def ready(processes) -> None:
            """Wait until each process has its partitions (a SIGTERM before that kills it)."""
            deadline = time.monotonic() + 90
            for sp in processes:
                sp.wait_ok(f"http://127.0.0.1:{sp.web_port}/readyz", deadline)

        def stop(name: str) -> None:
            sp = first[name]
            os.killpg(sp.process.pid, signal.SIGTERM)
            assert sp.process.wait(60) == 0, f"{name} did not stop cleanly:\n{sp.tail()}"

        async def scenario():
            tracker = JobTracker(pipeline.bootstrap, topic_prefix=pipeline.prefix)
            await tracker.start()
            try:
                await asyncio.to_thread(ready, first.values())
                uploads = await pipeline.upload(PHOTOS[:7], gallery="rebalance-a")
                joined = {name: group.start(name) for name in ("ingest", "variants", "catalog")}
                uploads += await pipeline.upload(PHOTOS[7:14], gallery="rebalance-b")
                await asyncio.to_thread(ready, joined.values())
                stop("variants")
                stop("catalog")
                group.kill(joined["ingest"])
                uploads += await pipeline.upload(PHOTOS[14:], gallery="rebalance-a")
                started = time.monotonic()
                stopped = [first["variants"], first["catalog"], joined["ingest"]]
                ends = await tracker.wait(
                    [u.job_id for u in uploads],
                    timeout_s=300,
                    should_abort=lambda: next(
                        (
                            f"{p.name} exited"
                            for p in group.exited()
                            if not any(p is s for s in stopped)
                        ),
                        None,
                    ),
                )
                return await verify_outcome(
                    pipeline,
                    uploads,
                    ends,
                    fault="workers joined, stopped and killed mid-run",
                    recovery_s=time.monotonic() - started,
                )
            finally:
                await tracker.stop()

        report = asyncio.run(scenario())
        record(report)
        print(
            f"rebalances mid-run: {report.uploads} uploads, {report.complete} complete, "
            f"lost {report.lost}, duplicates {report.duplicates}, "
            f"last job {report.recovery_s:.1f} s after the last change"
        )
        assert not report.problems, report.problems
    finally:
        pipeline.stop()
