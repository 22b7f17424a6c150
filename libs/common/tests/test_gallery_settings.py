"""Every worker sees every gallery's settings through the compacted topic, and updates."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from darkroom_cli.local.services import free_port
from darkroom_common.gallery_settings import publish_gallery_settings
from darkroom_common.topics import create_topics, layouts
from darkroom_schemas import GallerySettingsV1
from darkroom_schemas.topics import TOPICS

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
APP = Path(__file__).with_name("gallery_settings_app.py")


async def ask(
    bootstrap: str, prefix: str, galleries: list[str], timeout_s: float = 60
) -> dict[str, dict]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    out = TopicPartition(f"{prefix}probe-out", 0)
    consumer.assign([out])
    await consumer.seek_to_end(out)
    await consumer.position(out)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    answers: dict[str, dict] = {}
    try:
        for g in galleries:
            await producer.send_and_wait(f"{prefix}probe-in", g.encode(), key=g.encode())
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(answers) < len(galleries) and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    answers[r.key.decode()] = json.loads(r.value)
    finally:
        await producer.stop()
        await consumer.stop()
    return answers


def test_settings_reach_a_running_worker_and_updates_follow(kafka_bootstrap, tmp_path):
    prefix = f"gs{uuid.uuid4().hex[:8]}."
    topic = f"{prefix}gallery-settings"

    async def setup() -> None:
        await create_topics(kafka_bootstrap, layouts(prefix, 2, specs=[TOPICS["gallery-settings"]]))
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(f"{prefix}probe-in", 1, 1), NewTopic(f"{prefix}probe-out", 1, 1)]
            )
        finally:
            await admin.close()
        await publish(
            GallerySettingsV1(
                gallery_id="g1", processing_mode="manual", processing_provider="imagen"
            )
        )

    async def publish(event: GallerySettingsV1) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            await publish_gallery_settings(producer, topic, event)
        finally:
            await producer.stop()

    asyncio.run(setup())
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DARKROOM_TOPIC_PREFIX": prefix,
           "DARKROOM_DATA_DIR": str(tmp_path), "DARKROOM_WEB_PORT": str(free_port())}  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, str(APP)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "log").open("w"),
    )
    try:
        first = asyncio.run(ask(kafka_bootstrap, prefix, ["g1", "g2"]))
        assert first["g1"] == {
            "gallery_id": "g1",
            "processing_mode": "manual",
            "processing_provider": "imagen",
        }
        assert first["g2"] == {
            "gallery_id": "g2",
            "processing_mode": "auto",
            "processing_provider": "local",
        }
        asyncio.run(publish(GallerySettingsV1(gallery_id="g1", processing_mode="auto")))
        for _ in range(20):
            later = asyncio.run(ask(kafka_bootstrap, prefix, ["g1"]))
            if later["g1"]["processing_mode"] == "auto":
                break
        assert later["g1"] == {
            "gallery_id": "g1",
            "processing_mode": "auto",
            "processing_provider": "local",
        }
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        print((tmp_path / "log").read_text()[-2000:])
