"""Replay to reprocess: adding a variant to a profile renders only that variant, no duplicates."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from darkroom_cli.__main__ import main
from darkroom_cli.tracker import JobTracker
from darkroom_schemas import VariantDoneV1, decode

from .conftest import CORPUS, run_files, start_pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

KEY = "replay-test-admin-key-0123456789abcdef"
P1 = {"name": "p1", "specs": [{"name": "thumb", "width": 64, "height": 64, "fit": "cover"},
                              {"name": "medium", "width": 320, "height": 240}]}  # fmt: skip
P2 = {
    "name": "p2",
    "specs": [*P1["specs"], {"name": "tiny", "width": 32, "height": 32, "format": "webp"}],
}
FILES = [CORPUS / "orientation" / f"Landscape_{n}.jpg" for n in (1, 4, 7)]


async def variant_done(bootstrap: str, topic: str) -> list[VariantDoneV1]:
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


def test_replay_with_one_more_variant_renders_only_that_variant(kafka_bootstrap, tmp_path, capsys):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "p1.json").write_text(json.dumps(P1))
    (profiles / "p2.json").write_text(json.dumps(P2))
    env = {"DARKROOM_VARIANTS_PROFILES_DIR": str(profiles),
           "DARKROOM_AUTH__API_KEYS": json.dumps([{"name": "t", "key": KEY, "scopes": ["admin"]}])}  # fmt: skip
    pipeline = start_pipeline(kafka_bootstrap, tmp_path / "data", env=env)
    try:
        first = run_files(pipeline, FILES, gallery="rp", profile="p1")
        assert {end.status for _, end in first.values()} == {"complete"}
        before = asyncio.run(variant_done(kafka_bootstrap, f"{pipeline.prefix}variant-done"))
        assert len([e for e in before if e.status == "done"]) == len(FILES) * 2

        async def replay_and_wait() -> dict:
            tracker = JobTracker(kafka_bootstrap, topic_prefix=pipeline.prefix)
            await tracker.start()
            try:
                code = await asyncio.to_thread(
                    main, ["replay", "--topic", "validated", "--from-offset", "0", "--gallery", "rp",
                           "--profile", "p2", "--bootstrap", kafka_bootstrap, "--prefix", pipeline.prefix]
                )  # fmt: skip
                assert code == 0
                summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
                jobs = [f"{u.image_id}{summary['job_suffix']}" for u, _ in first.values()]
                started = time.monotonic()
                ends = await tracker.wait(jobs, timeout_s=180, should_abort=pipeline.died)
                return {"summary": summary, "ends": ends, "seconds": time.monotonic() - started}
            finally:
                await tracker.stop()

        result = asyncio.run(replay_and_wait())
        assert result["summary"]["replayed"] == len(FILES)
        assert {e.status for e in result["ends"].values()} == {"complete"}
        print(f"\nreplay of {len(FILES)} images with one added variant: {result['seconds']:.1f} s")
        suffix = result["summary"]["job_suffix"]
        after = [
            e
            for e in asyncio.run(variant_done(kafka_bootstrap, f"{pipeline.prefix}variant-done"))
            if e.job_id.endswith(suffix)
        ]
        rendered = Counter(
            e.variant for e in after if e.status == "done" and e.provenance.get("reused") != "true"
        )
        reused = Counter(e.variant for e in after if e.provenance.get("reused") == "true")
        assert rendered == {"tiny": len(FILES)}  # only the new variant was rendered
        assert reused == {"thumb": len(FILES), "medium": len(FILES)}
        for end in result["ends"].values():
            assert sorted(v.name for v in end.cataloged.variants) == ["medium", "thumb", "tiny"]
        catalog = next(p for p in pipeline.services.processes if p.name == "catalog")
        images = httpx.get(f"http://127.0.0.1:{catalog.web_port}/v1/galleries/rp/images",
                           headers={"Authorization": f"Bearer {KEY}"}, timeout=10).json()  # fmt: skip
        assert images["total"] == len(FILES)  # replaced, never duplicated
        assert all(len(i["variants"]) == 3 for i in images["images"])
    finally:
        pipeline.stop()


def test_reset_offsets_moves_a_stopped_group_and_refuses_an_active_one(kafka_bootstrap, capsys):
    topic = f"reset{uuid.uuid4().hex[:8]}"
    group = f"{topic}-group"

    async def setup() -> AIOKafkaConsumer:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(topic, 1, 1)])
        await admin.close()
        for i in range(5):
            await producer.send_and_wait(topic, str(i).encode())
        await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, group_id=group, auto_offset_reset="earliest"
        )
        await consumer.start()
        seen = 0
        while seen < 5:
            seen += sum(len(r) for r in (await consumer.getmany(timeout_ms=2000)).values())
        await consumer.commit()
        return consumer

    async def active_then_stopped() -> None:
        consumer = await setup()
        assert (
            await asyncio.to_thread(
                main,
                [
                    "reset-offsets",
                    "--group",
                    group,
                    "--to-time",
                    "2000-01-01T00:00:00",
                    "--bootstrap",
                    kafka_bootstrap,
                ],
            )
            == 1
        )
        await consumer.stop()

    asyncio.run(active_then_stopped())
    assert "active members" in capsys.readouterr().err
    assert (
        main(
            [
                "reset-offsets",
                "--group",
                group,
                "--to-time",
                "2000-01-01T00:00:00",
                "--bootstrap",
                kafka_bootstrap,
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["offsets"] == {f"{topic}[0]": 0}
