"""Shared by the catalog's tests: event factories (one realistic flow per image) and a
running catalog worker with its HTTP API (``python -m darkroom_catalog`` on a real broker).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from darkroom_catalog.jobs import JobState, apply
from darkroom_common.topics import create_topics, layouts
from darkroom_dev.testing.kafka import free_port
from darkroom_runtime.tables import encode_with, partition_for
from darkroom_schemas import (
    ImageMetadata,
    ProbeInfo,
    UploadedV1,
    ValidatedV1,
    VariantDoneV1,
    VariantRequestedV1,
    WireRecord,
    decode,
    encode,
)
from darkroom_schemas.topics import TOPICS, stage, topics_for_stage

T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
SHA = "ab" * 32
SIZES = {"thumb": (320, 213), "medium": (1280, 853), "large": (2560, 1707), "small": (640, 427)}
_clock = itertools.count()


def _at() -> datetime:
    return T0 + timedelta(seconds=next(_clock))


class Flow:
    """Builds the events of one job, each with a fresh event_id and a later occurred_at."""

    def __init__(self, image_id: str, gallery_id: str = "g1", job_id: str | None = None) -> None:
        self.image_id = image_id
        self.gallery_id = gallery_id
        self.job_id = job_id or f"job-{image_id}"
        self.ids = {
            "image_id": image_id,
            "gallery_id": gallery_id,
            "job_id": self.job_id,
            "correlation_id": f"corr-{image_id}",
        }

    def uploaded(self, attempt: int = 1, filename: str = "IMG_0001.JPG") -> UploadedV1:
        return UploadedV1(
            **self.ids,
            occurred_at=_at(),
            attempt=attempt,
            object_key=f"originals/{self.gallery_id}/{self.image_id}/{filename}",
            filename=filename,
            size_bytes=4_000_000,
            content_type="image/jpeg",
        )

    def validated(self, attempt: int = 1, **fields: Any) -> ValidatedV1:
        values: dict[str, Any] = {
            "accepted": True,
            "object_key": f"originals/{self.gallery_id}/{self.image_id}/IMG_0001.JPG",
            "filename": "IMG_0001.JPG",
            "sha256": SHA,
            "probe": ProbeInfo(
                format="jpeg", mime_type="image/jpeg", width=6000, height=4000, pixels=24_000_000
            ),
            "metadata": ImageMetadata(make="Canon", model="EOS R5", iso=200, f_number=2.8),
        }
        values.update(fields)
        return ValidatedV1(**self.ids, occurred_at=_at(), attempt=attempt, **values)

    def requested(
        self, variant: str, count: int, attempt: int = 1, source_key: str | None = None
    ) -> VariantRequestedV1:
        return VariantRequestedV1(
            **self.ids,
            occurred_at=_at(),
            attempt=attempt,
            variant=variant,
            spec_hash=f"{variant}-spec01",
            spec_json="{}",
            profile="default",
            variant_count=count,
            source_key=source_key or f"originals/{self.gallery_id}/{self.image_id}/IMG_0001.JPG",
            source_sha256=SHA,
        )

    def done(self, variant: str, attempt: int = 1, **fields: Any) -> VariantDoneV1:
        width, height = SIZES.get(variant, (100, 66))
        values: dict[str, Any] = {
            "status": "done",
            "object_key": f"variants/{self.image_id}/{variant}-spec01.webp",
            "format": "webp",
            "width": width,
            "height": height,
            "bytes": width * 10,
            "duration_ms": 12.5,
            "thumbhash": f"th-{variant}",
            "dominant_colour": f"#{len(variant):06x}",
        }
        values.update(fields)
        return VariantDoneV1(
            **self.ids,
            occurred_at=_at(),
            attempt=attempt,
            variant=variant,
            spec_hash=f"{variant}-spec01",
            **values,
        )

    def failed(self, variant: str, attempt: int = 1, reason: str = "decode_error") -> VariantDoneV1:
        return VariantDoneV1(
            **self.ids,
            occurred_at=_at(),
            attempt=attempt,
            variant=variant,
            spec_hash=f"{variant}-spec01",
            status="failed",
            reason_code=reason,
            reason_message=f"{variant} could not be rendered",
        )

    def happy(self, variants: tuple[str, ...] = ("thumb", "medium"), attempt: int = 1) -> list[Any]:
        """The events of a job that completes: upload, validation, requests, renders."""
        events: list[Any] = [self.uploaded(attempt), self.validated(attempt)]
        events += [self.requested(v, len(variants), attempt) for v in variants]
        events += [self.done(v, attempt) for v in variants]
        return events


@pytest.fixture
def flow() -> type[Flow]:
    """The :class:`Flow` factory class."""
    return Flow


KEYS = {
    "read": "read-key-0123456789abcdef",
    "admin": "admin-key-0123456789abcdef",
    "upload": "upload-key-0123456789abcdef",
}
"""The API keys the test worker accepts, by scope."""


class CatalogService:
    """A catalog worker subprocess with its API on 127.0.0.1, on its own topic prefix."""

    partitions = 2
    keys = KEYS

    def __init__(self, bootstrap: str, root: Path, **env: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = f"api{uuid.uuid4().hex[:8]}."
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.objects = root / "objects"
        self.log_path = root / "catalog.log"
        keys_file = root / "keys.json"
        keys_file.write_text(
            json.dumps([{"name": s, "key": k, "scopes": [s]} for s, k in KEYS.items()])
        )
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("DARKROOM_", "KAFKA_"))}
        self.env = {
            **clean,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DARKROOM_TOPIC_PREFIX": self.prefix,
            "DARKROOM_TOPIC_PARTITIONS": str(self.partitions),
            "DARKROOM_DATA_DIR": str(root / "data"),
            "DARKROOM_STORAGE__ROOT": str(self.objects),
            "DARKROOM_AUTH__API_KEYS_FILE": str(keys_file),
            "DARKROOM_CATALOG_WEB_PORT": str(self.port),
            "DARKROOM_CATALOG_SSE_WAIT_S": "4",
            "DARKROOM_LOG_JSON": "false",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        asyncio.run(
            create_topics(
                self.bootstrap,
                layouts(self.prefix, self.partitions, 1, topics_for_stage("catalog")),
            )
        )
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "darkroom_catalog"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        asyncio.run(self._wait_ready(90))

    async def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"the catalog exited:\n{self.log_tail()}")
                try:
                    async with http.get(f"{self.base}/readyz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.3)
        raise AssertionError(f"the catalog never became ready:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    async def produce(self, events: list[WireRecord]) -> None:
        """Send pipeline events to their topics (keyed by image_id), in order, with acks."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            for e in events:
                topic = f"{self.prefix}{e.event_type}"
                key = str(e.image_id).encode()  # type: ignore[attr-defined]
                await producer.send_and_wait(topic, encode(e), key=key)
        finally:
            await producer.stop()

    async def seed(self, states: list[JobState], on_topics: list[WireRecord]) -> None:
        """Write ``states`` to the jobs changelog, ``on_topics`` to their topics, commit past them.

        What a catalog partition looks like after its worker applied ``states`` and
        committed every input so far, and then lost its local state.
        """
        await self.produce(on_topics)
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            for job in states:
                key = job.image_id.encode()
                await producer.send_and_wait(
                    f"{self.prefix}catalog-jobs-changelog",
                    encode_with("json", job.to_json()),
                    key=key,
                    partition=partition_for(key, self.partitions),
                )
        finally:
            await producer.stop()
        inputs = sorted({r.topic for r in stage("catalog").routes})
        parts = [
            TopicPartition(f"{self.prefix}{t}", p) for t in inputs for p in range(self.partitions)
        ]
        group = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=f"{self.prefix}catalog",
            enable_auto_commit=False,
        )
        await group.start()
        try:
            group.assign(parts)
            await group.commit(await group.end_offsets(parts))
        finally:
            await group.stop()

    async def read(self, topic: str) -> list[Any]:
        """Every decoded event of registry topic ``topic``, from the beginning to its end."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            name = f"{self.prefix}{topic}"
            count = TOPICS[topic].partitions or self.partitions
            parts = [TopicPartition(name, p) for p in range(count)]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            out: list[Any] = []
            while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(*parts, timeout_ms=1000)
                for records in batch.values():
                    out += [decode(r.value) for r in records if r.value is not None]
            return out
        finally:
            await consumer.stop()


def job_state(events: list[Any]) -> JobState:
    """The job state ``events`` lead to, applied in order (each write one version up)."""
    job: JobState | None = None
    for n, event in enumerate(events, 1):
        job, _ = apply(job, event)
        job.version = n
    assert job is not None
    return job


@pytest.fixture(scope="module")
def catalog_service(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CatalogService]:
    """One catalog worker (API included) for a test module; each test uses its own ids."""
    service = CatalogService(kafka_bootstrap, tmp_path_factory.mktemp("catalog"))
    try:
        service.start()
        yield service
    finally:
        service.stop()
