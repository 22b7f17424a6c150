"""The variants worker on a real broker: plan, render, replay, dead-letter and delete.

The worker runs in-process (``build_app`` + ``StageApp.run``) on a fresh topic prefix,
with a filesystem store; events go in with the one event producer and come out of the
broker's topics.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from darkroom_common.producer import KafkaEventProducer
from darkroom_common.storage import FilesystemStore
from darkroom_common.topics import create_topics, layouts, read_to_end
from darkroom_dev.testing.kafka import free_port
from darkroom_runtime import ports_for
from darkroom_schemas import (
    DeadLetterV1,
    GallerySettingsV1,
    ImageDeletedV1,
    ValidatedV1,
    VariantDoneV1,
    decode,
)
from darkroom_variants.app import build_app
from darkroom_variants.settings import VariantsSettings

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


async def read(bootstrap: str, topic: str, count: int, timeout_s: float = 60.0) -> list[Any]:
    """Return the first ``count`` values of ``topic`` once it holds that many."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        found = [decode(r.value) async for r in read_to_end(bootstrap, [topic])]
        if len(found) >= count:
            return found
        assert loop.time() < deadline, f"{topic} holds {len(found)} of {count} events"
        await asyncio.sleep(0.2)


async def test_the_worker_plans_renders_replays_dead_letters_and_deletes(
    kafka_bootstrap, tmp_path, profiles_dir, corpus
):
    prefix = f"vw{uuid.uuid4().hex[:8]}."
    await create_topics(kafka_bootstrap, layouts(prefix, 2))
    settings = VariantsSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        topic_partitions=2,
        data_dir=tmp_path / "data",
        profiles_dir=profiles_dir,
        web_port=free_port(),
        batch_window_s=0.05,
        replay_quiet_s=0.1,
        session_timeout_s=6,
        commit_interval_s=0.2,
    )
    store = FilesystemStore(tmp_path / "objects")
    source = "originals/g1/i1/Portrait_6.jpg"
    await store.put(source, (corpus / "orientation/Portrait_6.jpg").read_bytes())
    ids = {"job_id": "i1", "gallery_id": "g1", "image_id": "i1", "correlation_id": "c1"}
    validated = ValidatedV1(**ids, accepted=True, object_key=source, filename="Portrait_6.jpg",
                            sha256="c" * 64)  # fmt: skip
    ports = ports_for("variants", settings, store=store, registry=CollectorRegistry())
    app = build_app(settings, ports)
    stop = asyncio.Event()
    async with KafkaEventProducer(kafka_bootstrap, topic_prefix=prefix) as producer:
        await producer.send("gallery-settings", GallerySettingsV1(gallery_id="g1", profile="tiny"))
        worker = asyncio.create_task(app.run(stop))
        try:
            await producer.send("validated", validated)
            done = await read(kafka_bootstrap, settings.topic("variant-done"), 2)
            assert sorted((d.variant, d.status) for d in done) == [("t", "done"), ("w", "done")]
            assert all([await store.exists(d.object_key) for d in done])

            await producer.send("replay.validated", validated)
            replayed = (await read(kafka_bootstrap, settings.topic("variant-done"), 4))[2:]
            assert {(d.provenance.get("reused"), d.status) for d in replayed} == {("true", "done")}
            assert all(isinstance(d, VariantDoneV1) for d in replayed)

            ack = await producer.send_raw(settings.topic("variant-requested"), b"junk", key=b"i1")
            await ack
            [letter] = await read(kafka_bootstrap, settings.topic("variants.dlq"), 1)
            assert isinstance(letter, DeadLetterV1)
            assert (letter.reason_code, letter.payload) == ("schema_error", b"junk")

            await producer.send("image-deleted", ImageDeletedV1(**ids))
            for _ in range(300):
                if not [i async for i in store.list("variants/")]:
                    break
                await asyncio.sleep(0.1)
            assert not [i async for i in store.list("variants/")]
            assert await store.exists(source)  # the original is ingest's to delete
        finally:
            stop.set()
            await asyncio.wait_for(worker, 60)
