"""Poison events on every stage topic, between normal uploads: dead-lettered, nothing else stops.

Each partition of ``uploaded``, ``validated``, ``variant-requested`` and
``variant-done`` gets two poison values: bytes that are not a framed Avro record,
and a framed record with an unknown schema id. Two well-formed uploads point at a
missing object and at a garbage object. Normal uploads go before and after.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaProducer

from darkroom_cli.commands.dlq import read_letters
from darkroom_cli.tracker import JobTracker
from darkroom_common.objects import original_key
from darkroom_common.uploads import UploadPublisher, new_id, upload_stream, uploaded_event
from darkroom_schemas.topics import STAGES

from ..conftest import PARTITIONS, start_pipeline
from .checks import API_ENV, PHOTOS, record, verify_outcome

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

POISONED = ("uploaded", "validated", "variant-requested", "variant-done")
NOT_AVRO = b"this is not a framed Avro record"
UNKNOWN_SCHEMA = b"\x00" + (0x7FFF_FFF0).to_bytes(4, "big") + b"\x02\x04body"


async def inject(bootstrap: str, prefix: str) -> dict[bytes, str]:
    """Produce both poison values to every partition of every poisoned topic.

    Returns each distinct payload (suffixed with its topic and partition) → its topic.
    """
    sent: dict[bytes, str] = {}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic in POISONED:
            for partition in range(PARTITIONS):
                for poison in (NOT_AVRO, UNKNOWN_SCHEMA):
                    value = poison + f" {topic}/{partition}".encode()
                    await producer.send_and_wait(
                        prefix + topic, value, key=b"poison", partition=partition
                    )
                    sent[value] = topic
    finally:
        await producer.stop()
    return sent


def expected_stages(topic: str) -> set[str]:
    """The stages that consume registry topic ``topic``, so must each dead-letter its poison."""
    return {s.name for s in STAGES if topic in s.consumes}


def test_poison_events_are_dead_lettered_and_normal_jobs_complete(kafka_bootstrap, tmp_path):
    pipeline = start_pipeline(kafka_bootstrap, tmp_path, env=API_ENV)
    try:

        async def scenario():
            tracker = JobTracker(pipeline.bootstrap, topic_prefix=pipeline.prefix)
            await tracker.start()
            try:
                normal = await pipeline.upload(PHOTOS[:6], gallery="poison-a")
                injected = time.monotonic()
                sent = await inject(pipeline.bootstrap, pipeline.prefix)
                async with UploadPublisher(pipeline.bootstrap, topic_prefix=pipeline.prefix) as pub:
                    image_id = new_id()
                    missing = uploaded_event(  # the original was never stored
                        gallery_id="poison-b",
                        image_id=image_id,
                        object_key=original_key("poison-b", image_id, "missing.jpg"),
                        filename="missing.jpg",
                        size_bytes=1234,
                    )
                    await pub.publish(missing)
                    garbage = await upload_stream(
                        pipeline.store,
                        pub,
                        random.Random(7).randbytes(64 * 1024),
                        gallery_id="poison-b",
                        filename="garbage.jpg",
                    )
                normal += await pipeline.upload(PHOTOS[6:], gallery="poison-a")
                uploads = [*normal, missing, garbage]
                want = sum(len(expected_stages(t)) for t in sent.values())
                deadline = time.monotonic() + 120
                while (
                    len(letters := await read_letters(pipeline.bootstrap, pipeline.prefix)) < want
                ):
                    assert time.monotonic() < deadline, f"{len(letters)} of {want} dead letters"
                    await asyncio.sleep(0.5)
                recovery_s = time.monotonic() - injected  # until every poison was dead-lettered
                ends = await tracker.wait(
                    [u.job_id for u in uploads], timeout_s=240, should_abort=pipeline.died
                )
                letters = await read_letters(pipeline.bootstrap, pipeline.prefix)
                report = await verify_outcome(
                    pipeline,
                    uploads,
                    ends,
                    fault=f"{len(sent)} poison values + missing/garbage object",
                    recovery_s=recovery_s,
                    expect_failed={
                        missing.job_id: "missing_original",
                        garbage.job_id: "unsupported_format",
                    },
                )
                return sent, letters, report
            finally:
                await tracker.stop()

        sent, letters, report = asyncio.run(scenario())
        record(report)
        by_payload: dict[bytes, list] = defaultdict(list)
        for letter in letters:
            by_payload[letter.envelope.payload].append(letter.envelope)
        print(
            f"\n{len(sent)} poison values on {len(POISONED)} topics → {len(letters)} dead letters; "
            f"{report.complete}/{report.uploads} jobs complete, failed {report.failed}"
        )
        assert pipeline.died() is None, "a worker stopped on poison"
        for payload, topic in sent.items():
            got = by_payload.pop(payload, [])
            assert sorted(e.stage for e in got) == sorted(expected_stages(topic)), payload
            for e in got:
                assert e.reason_code == "schema_error", e
                assert e.error_message, e
                assert not e.retriable, e
                assert e.source_topic.startswith(pipeline.prefix), e
        assert not by_payload, f"unexpected dead letters: {list(by_payload.values())}"
        assert not report.problems
        assert report.complete == len(PHOTOS)
    finally:
        pipeline.stop()
