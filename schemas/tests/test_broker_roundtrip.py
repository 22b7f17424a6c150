"""Every event schema makes a produce/consume round trip through the real broker."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from darkroom_schemas import decode, encode
from darkroom_schemas.examples import example_events

pytestmark = pytest.mark.kafka


async def test_every_event_round_trips_through_kafka(kafka_bootstrap):
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()

    events = example_events()
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for e in events:
            # One key for all: one partition, so the produce order is kept.
            await producer.send_and_wait(topic, encode(e), key=b"img-1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    received = []
    try:
        while len(received) < len(events):
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, "timed out waiting for the events to come back"
            for records in batch.values():
                received += [(r.key, decode(r.value)) for r in records]
    finally:
        await consumer.stop()

    assert [e for _, e in received] == events
    assert {k for k, _ in received} == {b"img-1"}
