"""Dead letters of one reason code, requeued once the cause is fixed, bring their jobs to complete."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from darkroom_cli.__main__ import main
from darkroom_cli.commands.dlq import read_letters
from darkroom_cli.tracker import JobTracker

from .conftest import CORPUS, start_pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]
FILES = [CORPUS / "orientation/Portrait_1.jpg", CORPUS / "orientation/Portrait_4.jpg"]


@contextmanager
def refusing_writes(folder: Path):
    """Make ``folder`` refuse new entries: the immutable flag as root, else chmod."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        undo = ["chattr", "-i", str(folder)]
    else:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    try:
        yield lambda: subprocess.run(undo, check=True)
    finally:
        subprocess.run(undo, check=False)


def test_requeue_by_reason_completes_the_jobs(kafka_bootstrap, tmp_path, capsys):
    pipeline = start_pipeline(
        kafka_bootstrap, tmp_path, env={"DARKROOM_RETRY_BASE_DELAY_S": "0.01"}
    )
    try:
        gallery_dir = pipeline.path("variants/locked/x").parent

        async def scenario():
            with refusing_writes(gallery_dir) as fix:
                uploads = await pipeline.upload(FILES, gallery="locked")
                deadline = time.monotonic() + 120
                letters = []
                while time.monotonic() < deadline:
                    letters = await read_letters(
                        kafka_bootstrap,
                        pipeline.prefix,
                        stage="variants",
                        reason="storage_access_denied",
                    )
                    if len(letters) >= 2 * 7:  # every variant of both images
                        break
                    await asyncio.sleep(1)
                assert len(letters) == 14, [x.envelope.reason_code for x in letters]
                # The failures moved their metrics on the variants worker.
                variants = next(p for p in pipeline.services.processes if p.name == "variants")
                async with httpx.AsyncClient() as http:
                    scraped = (await http.get(f"http://127.0.0.1:{variants.web_port}/metrics")).text
                assert (
                    'darkroom_failures_total{reason="storage_access_denied",service="variants",stage="variants"} 14.0'
                    in scraped
                )
                assert (
                    'darkroom_dead_letters_total{reason="storage_access_denied",service="variants"} 14.0'
                    in scraped
                )
                fix()
            # Follow the jobs from here on: their dead letters are behind us.
            tracker = JobTracker(kafka_bootstrap, topic_prefix=pipeline.prefix)
            await tracker.start()
            try:
                code = await asyncio.to_thread(
                    main, ["dlq", "requeue", "--stage", "variants", "--reason", "storage_access_denied",
                           "--bootstrap", kafka_bootstrap, "--prefix", pipeline.prefix]
                )  # fmt: skip
                assert code == 0
                return uploads, await tracker.wait(
                    [u.job_id for u in uploads], timeout_s=120, should_abort=pipeline.died
                )
            finally:
                await tracker.stop()

        uploads, ends = asyncio.run(scenario())
        assert '"requeued": 14' in capsys.readouterr().out
        assert {ends[u.job_id].status for u in uploads} == {"complete"}
        for u in uploads:
            assert len(ends[u.job_id].cataloged.variants) == 7
    finally:
        pipeline.stop()
