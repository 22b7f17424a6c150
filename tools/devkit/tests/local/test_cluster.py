"""Replication on a real local 3-node KRaft cluster (the session's ``kafka_cluster``).

Topics made with replication factor 3 carry ``min.insync.replicas`` 2; topics with
fewer replicas than the settings want are refused by the start-up check (a
worker's ``run_service`` exits with ``EXIT_TOPICS``); an
``acks=all`` send survives the loss of the partition leader's node, and the node
rejoins after a restart. One module so the cluster starts once.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest

from darkroom_cli.__main__ import main
from darkroom_common.errors import TopicMisconfigured
from darkroom_common.producer import KafkaEventProducer
from darkroom_common.settings import DarkroomSettings, load_settings
from darkroom_common.topics import (
    admin_client,
    create_topics,
    layouts,
    read_to_end,
    settings_layouts,
    verify_topics,
)
from darkroom_dev.local.cluster import LocalKafkaCluster
from darkroom_runtime import Emit, Route, StageApp, mount, ports_for
from darkroom_runtime.service import EXIT_TOPICS, run_service
from darkroom_schemas import UploadedV1, decode
from darkroom_schemas.topics import TOPICS, stage, topics_for_stage

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _settings_from_arguments_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DARKROOM_TOPIC_PREFIX",
        "DARKROOM_TOPIC_PARTITIONS",
        "DARKROOM_TOPIC_REPLICATION_FACTOR",
        "DARKROOM_TOPIC_MIN_INSYNC_REPLICAS",
    ):
        monkeypatch.delenv(name, raising=False)


def _prefix() -> str:
    return f"rf{uuid.uuid4().hex[:8]}."


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_cluster_lists_three_brokers(kafka_cluster: LocalKafkaCluster) -> None:
    assert kafka_cluster.registered_brokers() == {0, 1, 2}
    assert kafka_cluster.bootstrap.count(",") == 2
    assert all(kafka_cluster.alive(i) for i in range(3))


def test_rf3_topics_are_described_with_three_replicas_and_min_isr_two(
    kafka_cluster: LocalKafkaCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--bootstrap", kafka_cluster.bootstrap, "--prefix", _prefix(), "--partitions", "2"]
    assert main(["topics", "create", *args, "--replication-factor", "3", "--verify"]) == 0
    created = _json_lines(capsys.readouterr().out)
    assert {r["outcome"] for r in created} == {"created"}
    assert main(["topics", "describe", *args, "--replication-factor", "3"]) == 0
    rows = _json_lines(capsys.readouterr().out)
    assert len(rows) == len(TOPICS)
    for row in rows:
        assert row["ok"] is True, row
        assert row["replication_factor"] == 3, row
        assert row["min_insync_replicas"] == 2, row
    # With the settings' replication factor (1 here) the declared min ISR differs.
    assert main(["topics", "describe", *args]) == 1
    rows = _json_lines(capsys.readouterr().out)
    assert all("min.insync.replicas=2, settings want 1" in r["problems"] for r in rows)


async def test_rf1_topics_are_refused_when_the_settings_want_three(
    kafka_cluster: LocalKafkaCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = _prefix()
    bootstrap = kafka_cluster.bootstrap
    specs = topics_for_stage("ingest")
    await create_topics(bootstrap, layouts(prefix, 1, 1, specs))
    settings = load_settings(
        DarkroomSettings,
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        topic_partitions=1,
        topic_replication_factor=3,
    )
    with pytest.raises(TopicMisconfigured) as refused:
        await verify_topics(bootstrap, settings_layouts(settings, specs), service="ingest")
    message = refused.value.message
    assert f"{prefix}uploaded: replication factor 1, settings want 3" in message
    assert "min.insync.replicas=1, settings want 2" in message
    assert "kafka-reassign-partitions" in message
    # the topics job (create --verify) fails on them too, naming the replication factor
    args = ["--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "1"]
    code = await asyncio.to_thread(
        main, ["topics", "create", *args, "--replication-factor", "3", "--verify"]
    )
    assert code == 1
    assert "replication factor 1, settings want 3" in capsys.readouterr().err


async def _leader_and_isr(bootstrap: str, topic: str) -> tuple[int, list[int]]:
    async with admin_client(bootstrap) as admin:
        [meta] = await admin.describe_topics([topic])
    [partition] = meta["partitions"]
    return int(partition["leader"]), sorted(partition["isr"])


async def _wait_isr(bootstrap: str, topic: str, want: int, timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while True:
        _, isr = await _leader_and_isr(bootstrap, topic)
        if len(isr) == want or time.monotonic() >= deadline:
            return isr
        await asyncio.sleep(0.5)


def _upload(n: int) -> UploadedV1:
    return UploadedV1(
        job_id=f"img-{n}", gallery_id="g-1", image_id=f"img-{n}", correlation_id="c",
        object_key=f"originals/g-1/img-{n}/a.jpg", filename="a.jpg", size_bytes=3,
    )  # fmt: skip


async def test_acks_all_send_survives_losing_the_leaders_node_and_it_rejoins(
    kafka_cluster: LocalKafkaCluster,
) -> None:
    prefix = _prefix()
    bootstrap = kafka_cluster.bootstrap
    topic = f"{prefix}uploaded"
    await create_topics(bootstrap, layouts(prefix, 1, 3, [TOPICS["uploaded"]]))
    leader, isr = await _leader_and_isr(bootstrap, topic)
    assert isr == [0, 1, 2]
    async with KafkaEventProducer(bootstrap, topic_prefix=prefix) as producer:
        await producer.send("uploaded", _upload(1))
        kafka_cluster.kill(leader)
        try:
            assert not kafka_cluster.alive(leader)
            # the start-up check asks the other nodes instead of failing on the dead one
            for _ in range(3):
                await verify_topics(
                    bootstrap, layouts(prefix, 1, 3, [TOPICS["uploaded"]]), service="test"
                )
            started = time.monotonic()
            await producer.send("uploaded", _upload(2))  # acks=all: 2 in sync suffice
            print(
                f"acks=all send with node {leader} killed took {time.monotonic() - started:.1f} s"
            )
            new_leader, isr = await _leader_and_isr(bootstrap, topic)
            assert new_leader != leader
            assert leader not in isr
        finally:
            await asyncio.to_thread(kafka_cluster.restart, leader)
        assert kafka_cluster.alive(leader)
        assert kafka_cluster.serving(leader)
        assert kafka_cluster.registered_brokers() == {0, 1, 2}
        # the restarted node catches up and is back in sync
        assert await _wait_isr(bootstrap, topic, 3, timeout_s=30) == [0, 1, 2]
        await producer.send("uploaded", _upload(3))
    images = [decode(r.value).image_id async for r in read_to_end(bootstrap, [topic])]
    assert images == ["img-1", "img-2", "img-3"]


async def _nothing(event: object) -> list[Emit]:
    return []


def test_a_worker_refuses_to_start_on_topics_with_fewer_replicas(
    kafka_cluster: LocalKafkaCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prefix = _prefix()
    specs = topics_for_stage("raw-provider")
    asyncio.run(create_topics(kafka_cluster.bootstrap, layouts(prefix, 2, 1, specs)))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_cluster.bootstrap)
    monkeypatch.setenv("DARKROOM_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("DARKROOM_TOPIC_PARTITIONS", "2")
    monkeypatch.setenv("DARKROOM_TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("DARKROOM_DATA_DIR", str(tmp_path))

    def build(settings: DarkroomSettings) -> StageApp:
        app = StageApp("raw-provider", settings)
        routes = {t: Route.each(_nothing) for t in stage("raw-provider").consumes}
        return mount(app, "raw-provider", routes, ports_for("raw-provider", settings))

    assert run_service("raw-provider", DarkroomSettings, build) == EXIT_TOPICS
    err = capsys.readouterr().err
    assert f"{prefix}validated: replication factor 1, settings want 3" in err
