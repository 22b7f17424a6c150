"""At-least-once: a render worker killed with SIGKILL mid-batch loses nothing."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer

from darkroom_cli.tracker import JobTracker
from darkroom_imaging.profiles import load_profile
from darkroom_schemas import decode

from .conftest import CORPUS, start_pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

FILES = [CORPUS / "large/canon_5d3_22mp.jpg", CORPUS / "large/craft_beer_24mp_progressive.jpg",
         CORPUS / "large/sharp_bench_2569067123_aca715a2ee_o.jpg"] * 2  # fmt: skip


async def first_variant_done(bootstrap: str, topic: str, timeout_s: float) -> None:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if await consumer.getmany(timeout_ms=200):
                return
        raise AssertionError("no variant was rendered in time")
    finally:
        await consumer.stop()


async def all_variant_done(bootstrap: str, topic: str) -> list:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out = []
    try:
        while batch := await consumer.getmany(timeout_ms=3000):
            out += [decode(r.value) for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return out


def test_killed_render_worker_is_replaced_and_every_job_completes(kafka_bootstrap, tmp_path):
    pipeline = start_pipeline(kafka_bootstrap, tmp_path)
    try:

        async def scenario():
            tracker = JobTracker(pipeline.bootstrap, topic_prefix=pipeline.prefix)
            await tracker.start()
            try:
                uploads = []
                for i, path in enumerate(FILES):  # each copy in its own gallery: no duplicates
                    uploads += await pipeline.upload([path], gallery=f"kill{i}")
                await first_variant_done(pipeline.bootstrap, f"{pipeline.prefix}variant-done", 120)
                victim = next(p for p in pipeline.services.processes if p.name == "variants")
                pipeline.services.kill(victim)
                started = time.monotonic()
                pipeline.services.start("variants")
                ends = await tracker.wait([u.job_id for u in uploads], timeout_s=300)
                return uploads, ends, time.monotonic() - started
            finally:
                await tracker.stop()

        uploads, ends, recovery_s = asyncio.run(scenario())
        print(
            f"\nrender worker killed mid-batch: {len(uploads)} jobs complete {recovery_s:.1f} s after the restart"
        )
        assert {ends[u.job_id].status for u in uploads} == {"complete"}
        specs = load_profile("default").specs
        for u in uploads:
            assert len(ends[u.job_id].cataloged.variants) == len(specs)
            for v in ends[u.job_id].cataloged.variants:
                assert pipeline.path(v.object_key).is_file()
        done = [
            e
            for e in asyncio.run(
                all_variant_done(pipeline.bootstrap, f"{pipeline.prefix}variant-done")
            )
            if e.status == "done"
        ]
        # Redelivery may render a variant again, always to the same key: never a second object.
        keys = Counter(e.object_key for e in done)
        assert len(keys) == len(uploads) * len(specs)
    finally:
        pipeline.stop()
