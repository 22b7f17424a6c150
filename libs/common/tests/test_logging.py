"""JSON logs carry the ids bound with log_context, and only inside the block."""

from __future__ import annotations

import asyncio
import json
import logging

from darkroom_common.logging import configure_logging, current_context, log_context


def test_json_lines_carry_context_ids(capsys):
    configure_logging("ingest", level="INFO", json_lines=True)
    log = logging.getLogger("darkroom.test")
    with log_context(job_id="job-1", gallery_id="gal-1", image_id="img-1", provider_job_id=None):
        log.info("validated", extra={"format": "jpeg"})
    log.info("outside")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    inside, outside = lines
    assert inside["message"] == "validated"
    assert inside["service"] == "ingest"
    assert (inside["job_id"], inside["gallery_id"], inside["image_id"]) == (
        "job-1",
        "gal-1",
        "img-1",
    )
    assert inside["format"] == "jpeg"
    assert "provider_job_id" not in inside
    assert "job_id" not in outside
    logging.getLogger().handlers.clear()


async def test_context_is_per_task():
    async def work(job: str) -> str:
        with log_context(job_id=job):
            await asyncio.sleep(0.01)
            return current_context()["job_id"]

    assert await asyncio.gather(work("a"), work("b")) == ["a", "b"]
    assert current_context() == {}
