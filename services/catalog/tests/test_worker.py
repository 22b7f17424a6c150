"""The catalog worker against a real broker: cataloged events, dead letters, restarts.

``python -m darkroom_catalog`` runs as a subprocess on a unique topic prefix;
events are produced with aiokafka. "Everything was processed" is read from the
consumer group's committed offsets, which the runtime commits only after an event's
outputs and table writes were acknowledged by the broker.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from darkroom_common.topics import create_topics, layouts
from darkroom_dev.testing.kafka import free_port
from darkroom_runtime.service import EXIT_TOPICS
from darkroom_schemas import CatalogedV1, DeadLetterV1, WireRecord, decode, encode
from darkroom_schemas.topics import stage, topics_for_stage

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(180)]

PARTITIONS = 2
INPUTS = stage("catalog").consumes
TOPIC_OF = {
    "uploaded": "uploaded",
    "validated": "validated",
    "variant-requested": "variant-requested",
    "variant-done": "variant-done",
}


class Worker:
    """One ``python -m darkroom_catalog`` subprocess; its output goes to a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "darkroom_catalog"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def stop(self, timeout_s: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    prefix = f"cat{uuid.uuid4().hex[:8]}."
    asyncio.run(
        create_topics(kafka_bootstrap, layouts(prefix, PARTITIONS, 1, topics_for_stage("catalog")))
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DARKROOM_", "KAFKA_"))}
    env = {
        **clean,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DARKROOM_TOPIC_PREFIX": prefix,
        "DARKROOM_TOPIC_PARTITIONS": str(PARTITIONS),
        "DARKROOM_DATA_DIR": str(tmp_path / "data"),
        "DARKROOM_CATALOG_WEB_PORT": str(free_port()),
        "DARKROOM_LOG_JSON": "false",
    }
    worker = Worker(env, tmp_path / "worker.log")
    try:
        yield {"prefix": prefix, "bootstrap": kafka_bootstrap, "worker": worker}
    finally:
        worker.stop()


async def produce(bootstrap: str, prefix: str, items: list[tuple[str, bytes, bytes]]) -> None:
    """Send ``(registry topic, key, value)`` in order and wait for the acks."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, key, value in items:
            await producer.send_and_wait(f"{prefix}{topic}", value=value, key=key)
    finally:
        await producer.stop()


def wire(events: list[WireRecord]) -> list[tuple[str, bytes, bytes]]:
    return [
        (TOPIC_OF[e.event_type], str(e.image_id).encode(), encode(e))  # type: ignore[attr-defined]
        for e in events
    ]


async def read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Return every ``(key, value)`` of ``topic`` from the beginning to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        out: list[tuple[bytes | None, bytes | None]] = []
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(*parts, timeout_ms=1000)
            for records in batch.values():
                out += [(r.key, r.value) for r in records]
        return out
    finally:
        await consumer.stop()


async def caught_up(
    bootstrap: str, group: str, topics: list[str], timeout_s: float, worker: Worker
) -> None:
    """Wait until ``group`` committed the end offset of every partition of ``topics``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        deadline = time.monotonic() + timeout_s
        while True:
            ends = await consumer.end_offsets(parts)
            try:
                committed = await admin.list_consumer_group_offsets(group)
            except KafkaError:  # the group's coordinator is not elected yet
                committed = {}
            behind = {
                tp: (committed[tp].offset if tp in committed else -1, ends[tp])
                for tp in parts
                if ends[tp] > 0 and (tp not in committed or committed[tp].offset < ends[tp])
            }
            if not behind:
                return
            if worker.proc is not None and worker.proc.poll() is not None:
                raise AssertionError(f"the worker exited with {worker.proc.returncode}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{group} did not catch up: {behind}")
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
        await admin.close()


async def wait_caught_up(d: dict[str, Any], timeout_s: float = 60) -> None:
    worker: Worker = d["worker"]
    topics = [f"{d['prefix']}{t}" for t in INPUTS]
    try:
        await caught_up(d["bootstrap"], f"{d['prefix']}catalog", topics, timeout_s, worker)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- worker log ---\n{worker.log_tail()}") from None
    # The gallery agent reads cataloged through its repartition topic.
    repartition = f"{d['prefix']}catalog.cataloged-by-gallery"
    await caught_up(
        d["bootstrap"],
        f"{d['prefix']}catalog",
        [f"{d['prefix']}cataloged", repartition],
        30,
        worker,
    )


async def cataloged(d: dict[str, Any]) -> list[CatalogedV1]:
    records = await read_all(d["bootstrap"], f"{d['prefix']}cataloged")
    out = [decode(v) for _, v in records if v is not None and v != b"garbage"]
    assert all(isinstance(e, CatalogedV1) for e in out)
    return out  # type: ignore[return-value]


async def table(d: dict[str, Any], name: str) -> dict[str, Any]:
    """The latest value of every key of a table's changelog topic."""
    records = await read_all(d["bootstrap"], f"{d['prefix']}catalog-{name}-changelog")
    state: dict[str, Any] = {}
    for key, value in records:
        assert key is not None
        state[key.decode()] = json.loads(value) if value is not None else None
    return state


async def test_worker_catalogs_each_terminal_transition_once(deployment, flow):
    d = deployment
    a, b, c, raw = flow("img-a"), flow("img-b"), flow("img-c"), flow("img-raw")
    variants = ("thumb", "medium", "large")
    a_events = a.happy(variants)
    a_events.insert(5, a_events[1])  # the validated event again, same event_id
    a_events.append(a_events[-1])  # the completing variant-done again
    b_events = [
        b.uploaded(),
        b.validated(accepted=False, reason_code="duplicate", duplicate_of="img-a"),
    ]
    c_first = [
        c.uploaded(),
        c.validated(),
        c.requested("thumb", 2),
        c.requested("large", 2),
        c.done("thumb"),
        c.failed("large", reason="decode_error"),
    ]
    c_retry = c.happy(("thumb", "large"), attempt=2)
    c_stale = [c.done("large", attempt=1)]
    master = "masters/g1/img-raw/IMG_0002.jpg"
    raw_events = [
        raw.uploaded(filename="IMG_0002.CR2"),
        raw.validated(is_raw=True, object_key="originals/g1/img-raw/IMG_0002.CR2"),
        raw.validated(
            object_key=master, derived_from="originals/g1/img-raw/IMG_0002.CR2", metadata=None
        ),
        raw.requested("thumb", 1, source_key=master),
    ]
    raw_done = [raw.done("thumb")]
    sequence = wire(a_events + b_events + c_first + raw_events)
    # Garbage on variant-done, on img-raw's partition, ahead of the event that completes it.
    poison = ("variant-done", b"img-raw", b"\x00\x00\x00\x00\x07not avro at all")
    # A valid event of the wrong kind on a job topic is dead-lettered too.
    stray = CatalogedV1(**raw.ids, status="failed", completed_at=raw_done[0].occurred_at)
    misplaced = ("uploaded", b"img-raw", encode(stray))
    # Garbage on cataloged is dead-lettered where it was read, not repartitioned first.
    gallery_poison = ("cataloged", b"img-z", b"garbage")
    sequence += [poison, misplaced, gallery_poison, *wire(raw_done)]

    await produce(d["bootstrap"], d["prefix"], sequence)
    d["worker"].start()
    await wait_caught_up(d, timeout_s=90)

    assert sorted((e.image_id, e.status) for e in await cataloged(d)) == [
        ("img-a", "complete"),
        ("img-b", "failed"),
        ("img-c", "failed"),
        ("img-raw", "complete"),
    ], d["worker"].log_tail()
    # The retry is produced once the failure was cataloged, as a client would.
    retry = wire(c_retry + c_stale)
    await produce(d["bootstrap"], d["prefix"], retry)
    sequence += retry
    await wait_caught_up(d)

    out = await cataloged(d)
    summary = sorted((e.image_id, e.status, e.attempts) for e in out)
    assert summary == [
        ("img-a", "complete", 1),
        ("img-b", "failed", 1),
        ("img-c", "complete", 2),
        ("img-c", "failed", 1),
        ("img-raw", "complete", 1),
    ], d["worker"].log_tail()
    by = {(e.image_id, e.status): e for e in out}
    done_a = by["img-a", "complete"]
    assert [v.name for v in done_a.variants] == ["large", "medium", "thumb"]
    assert done_a.thumbhash == "th-thumb"
    assert done_a.filename == "IMG_0001.JPG"
    assert done_a.metadata is not None
    assert done_a.metadata.model == "EOS R5"
    assert by["img-b", "failed"].duplicate_of == "img-a"
    assert by["img-b", "failed"].reason_code == "duplicate"
    assert by["img-c", "failed"].reason_code == "decode_error"
    assert by["img-raw", "complete"].source_key == master
    assert by["img-raw", "complete"].filename == "IMG_0002.CR2"

    dlq = await read_all(d["bootstrap"], f"{d['prefix']}catalog.dlq")
    letters = {}
    for _, value in dlq:
        letter = decode(value or b"")
        assert isinstance(letter, DeadLetterV1)
        letters[letter.source_topic.removeprefix(d["prefix"])] = letter
    assert len(dlq) == 3
    assert sorted(letters) == ["cataloged", "uploaded", "variant-done"]
    garbage = letters["variant-done"]
    assert (garbage.payload, garbage.key, garbage.reason_code) == (
        poison[2],
        b"img-raw",
        "schema_error",
    )
    assert letters["uploaded"].payload == misplaced[2]
    assert letters["uploaded"].reason_code == "unexpected_event"
    assert letters["cataloged"].payload == b"garbage"

    galleries = await table(d, "galleries")
    g1 = galleries["g1"]
    assert sorted(g1["images"]) == ["img-a", "img-c", "img-raw"]
    assert g1["image_count"] == 3
    assert g1["images"]["img-c"]["variants"]["large"]["key"] == "variants/img-c/large-spec01.webp"

    # A replay of everything (dead letters aside) changes nothing and catalogs nothing new.
    await produce(
        d["bootstrap"],
        d["prefix"],
        [item for item in sequence if item not in (poison, misplaced, gallery_poison)],
    )
    await wait_caught_up(d)
    assert len(await cataloged(d)) == 5
    assert (await table(d, "galleries"))["g1"]["image_count"] == 3

    # State survives a restart: a late failure for the complete image must not regress it.
    d["worker"].stop()
    assert d["worker"].proc.returncode is not None
    late = a.failed("medium")
    e = flow("img-e", gallery_id="g2")
    await produce(d["bootstrap"], d["prefix"], wire([late, *e.happy(("thumb",))]))
    d["worker"].start()
    await wait_caught_up(d, timeout_s=90)
    after = sorted((x.image_id, x.status, x.attempts) for x in await cataloged(d))
    assert after == sorted([*summary, ("img-e", "complete", 1)]), d["worker"].log_tail()
    jobs = await table(d, "jobs")
    assert jobs["img-a"]["status"] == "complete"
    assert jobs["img-c"]["attempts"] == 2
    assert (await table(d, "galleries"))["g2"]["image_count"] == 1


def test_worker_refuses_to_start_without_its_topics(kafka_bootstrap, tmp_path):
    prefix = f"cat{uuid.uuid4().hex[:8]}."
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DARKROOM_", "KAFKA_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "darkroom_catalog"],
        env={
            **clean,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DARKROOM_TOPIC_PREFIX": prefix,
            "DARKROOM_DATA_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == EXIT_TOPICS, proc.stderr
    assert f"{prefix}uploaded: missing" in proc.stderr
