"""A catalog worker killed mid-run and restarted without its local state loses nothing.

What a rescheduled pod or a new partition owner goes through: SIGKILL at a seeded
random moment while 20 jobs flow, its RocksDB folder deleted, a new process started
on the same consumer group. It must rebuild its tables from their changelogs before
it handles anything, and handle every event it had not committed: every job ends
(complete, or failed with its reason), no job is cataloged twice for one attempt, no
image is listed twice in a gallery.

``DARKROOM_STATE_LOSS_RUNS`` sets how many kill points are tried (CI: 2; ``make
soak-runtime``: 20). Each prints its kill point and recovery time.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import time

import pytest

from darkroom_cli.tracker import JobTracker

from ..conftest import CORPUS, start_pipeline
from .checks import API_ENV, record, verify_outcome

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

RUNS = int(os.environ.get("DARKROOM_STATE_LOSS_RUNS", "2"))
WINDOW_S = tuple(
    float(x) for x in os.environ.get("DARKROOM_STATE_LOSS_WINDOW_S", "1,25").split(",")
)
"""Kill points are drawn uniformly from this window after the uploads (seconds)."""
PHOTOS = [
    *(
        CORPUS / "orientation" / f"{side}_{n}.jpg"
        for side in ("Landscape", "Portrait")
        for n in (1, 3, 5, 6, 8)
    ),
    *(
        CORPUS / rel
        for rel in (
            "large/canon_5d3_22mp.jpg",
            "large/sharp_bench_2569067123_aca715a2ee_o.jpg",
            "jpeg/exif_lens_gps_iphone6.jpg",
            "jpeg/exif_lens_gps_nikon_d70s.jpg",
            "jpeg/exif_gps_tahoe.jpg",
            "jpeg/exif_gps_nikon_coolpix_p6000.jpg",
            "jpeg/exif_canon_40d_makernote.jpg",
            "formats/icc_adobergb_canon_eos7d.jpg",
            "formats/progressive_960x1280.jpg",
            "formats/png_rgba_alpha.png",
        )
    ),
]
"""20 distinct real photos: all complete."""


@pytest.mark.parametrize("seed", range(RUNS))
def test_catalog_killed_and_restarted_without_its_state_loses_nothing(
    kafka_bootstrap, tmp_path, seed
):
    rng = random.Random(seed)
    kill_after_s = round(rng.uniform(*WINDOW_S), 2)
    pipeline = start_pipeline(kafka_bootstrap, tmp_path, env=API_ENV)
    state = tmp_path / "state" / f"{pipeline.prefix}catalog"
    try:

        async def scenario():
            tracker = JobTracker(pipeline.bootstrap, topic_prefix=pipeline.prefix)
            await tracker.start()
            try:
                uploads = await pipeline.upload(PHOTOS, gallery=f"loss-{seed}")
                await asyncio.sleep(kill_after_s)
                victim = next(p for p in pipeline.services.processes if p.name == "catalog")
                pipeline.services.kill(victim)
                shutil.rmtree(state, ignore_errors=True)  # none yet when killed very early
                started = time.monotonic()
                restarted = pipeline.services.start("catalog")
                ends = await tracker.wait(
                    [u.job_id for u in uploads],
                    timeout_s=240,
                    should_abort=lambda: next(
                        (f"{p.name} exited" for p in pipeline.services.exited() if p is not victim),
                        None,
                    ),
                )
                # The jobs may all have ended before the kill: the rebuilt catalog must
                # answer for them, so wait until it has restored its partitions.
                await asyncio.to_thread(
                    restarted.wait_ok,
                    f"http://127.0.0.1:{restarted.web_port}/readyz",
                    time.monotonic() + 120,
                )
                return await verify_outcome(
                    pipeline,
                    uploads,
                    ends,
                    fault=f"catalog kill -9 at {kill_after_s:.2f} s, state deleted",
                    recovery_s=time.monotonic() - started,
                )
            finally:
                await tracker.stop()

        report = asyncio.run(scenario())
        record(report)
        print(
            f"state loss seed {seed}: killed at {kill_after_s:.2f} s, "
            f"{report.uploads} uploads, lost {report.lost}, duplicates {report.duplicates}, "
            f"recovery {report.recovery_s:.1f} s"
        )
        assert not report.problems, report.problems
    finally:
        pipeline.stop()
