"""Topic creation is idempotent and verification catches missing or misconfigured topics."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from darkroom_common.errors import BrokerUnavailable, TopicMisconfigured
from darkroom_common.topics import create_topics, describe_topics, layouts, verify_topics
from darkroom_schemas.topics import TOPICS, topics_for_stage

pytestmark = pytest.mark.kafka


def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}."


async def test_create_is_idempotent_and_describe_matches(kafka_bootstrap):
    wanted = layouts(prefix(), partitions=2)
    first = await create_topics(kafka_bootstrap, wanted)
    assert set(first.values()) == {"created"}
    assert len(first) == len(TOPICS)
    second = await create_topics(kafka_bootstrap, wanted)
    assert set(second.values()) == {"exists"}
    states = await describe_topics(kafka_bootstrap, wanted)
    assert all(s.ok for s in states), [s.problems for s in states]
    assert {s.name: s.partitions for s in states} == {t.name: t.partitions for t in wanted}
    assert {t.partitions for t in wanted} == {1, 2}  # gallery-settings pins 1
    uploaded = next(s for s in states if s.name.endswith("uploaded"))
    assert uploaded.configs["retention.ms"] == TOPICS["uploaded"].configs()["retention.ms"]
    # one broker: one replica each, and min.insync.replicas declared as max(1, 1 - 1) = 1
    assert {s.replication_factor for s in states} == {1}
    assert {s.min_insync_replicas for s in states} == {1}
    assert {s.configs["min.insync.replicas"] for s in states} == {"1"}


async def test_verify_names_missing_and_misconfigured_topics(kafka_bootstrap):
    p = prefix()
    wanted = layouts(p, partitions=4, specs=topics_for_stage("ingest"))
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:  # 'uploaded' exists with too few partitions and the wrong retention; the rest are missing
        await admin.create_topics(
            [NewTopic(f"{p}uploaded", 1, 1, topic_configs={"retention.ms": "1000"})]
        )
        for _ in range(50):  # topic metadata reaches the broker shortly after the controller
            if f"{p}uploaded" in await admin.list_topics():
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    with pytest.raises(TopicMisconfigured) as info:
        await verify_topics(kafka_bootstrap, wanted, service="ingest")
    message = info.value.message
    assert f"{p}uploaded: has 1 partitions, registry wants 4" in message
    assert "retention.ms=1000" in message
    assert f"{p}validated: missing" in message
    assert f"{p}ingest.dlq: missing" in message
    assert "darkroom topics create" in message


async def test_unreachable_broker_is_a_transient_error():
    with pytest.raises(BrokerUnavailable) as info:
        await create_topics("127.0.0.1:1", layouts("x.", 1))
    assert info.value.retriable
