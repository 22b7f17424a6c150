"""The ingest worker honours gallery settings and deletes: a real worker process, the real broker.

One worker serves three galleries: ``manual-g`` (manual mode, profile
``thumbs``), ``bounded-g`` (max_concurrent_jobs 1) and ``auto-g`` (defaults).
A rejected upload is never held, so a rejection sent *after* an accepted
upload of the same gallery (same partition, in order) proves the accepted one
was already handled when its ``validated`` is still missing.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from darkroom_common.producer import KafkaEventProducer
from darkroom_common.storage import FilesystemStore
from darkroom_common.uploads import UploadPublisher, upload_file
from darkroom_ingest.testing import free_port, make_topics, new_prefix, read_events
from darkroom_schemas import (
    CatalogedV1,
    GallerySettingsV1,
    ImageDeletedV1,
    UploadedV1,
    ValidatedV1,
    utcnow,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
JPEG_A = CORPUS / "jpeg" / "exif_gps_nikon_coolpix_p6000.jpg"
JPEG_B = CORPUS / "jpeg" / "exif_gps_only_thompson_springs.jpg"


class World:
    """A topic prefix, a store and a running ingest worker."""

    def __init__(self, bootstrap: str, root: Path) -> None:
        self.bootstrap = bootstrap
        self.prefix = new_prefix()
        self.root = root / "objects"
        self.root.mkdir(parents=True)
        make_topics(bootstrap, self.prefix)

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def run(self, coro: Any) -> Any:
        return asyncio.run(coro)

    async def _upload(self, path: Path | None, gallery: str, data: bytes | None) -> UploadedV1:
        async with (
            FilesystemStore(self.root) as store,
            UploadPublisher(self.bootstrap, topic_prefix=self.prefix) as publisher,
        ):
            if path is None:
                tmp = self.root.parent / f"bad-{uuid.uuid4().hex}.jpg"
                tmp.write_bytes(data or b"")
                path = tmp
            return await upload_file(store, publisher, path, gallery_id=gallery)

    def upload(self, path: Path | None, gallery: str, data: bytes | None = None) -> UploadedV1:
        return self.run(self._upload(path, gallery, data))

    def produce(self, topic: str, event: Any) -> None:
        """Send ``event`` to registry topic ``topic``, keyed as the registry declares."""

        async def go() -> None:
            async with KafkaEventProducer(self.bootstrap, topic_prefix=self.prefix) as producer:
                await producer.send(topic, event)

        self.run(go())

    def verdicts(
        self, image_id: str, want: int | None = 1, timeout_s: float = 90
    ) -> list[ValidatedV1]:
        """Verdicts on ``image_id``: wait for ``want`` of them, or (None) those sent so far."""
        return read_events(
            self.bootstrap,
            self.topic("validated"),
            want,
            timeout_s=timeout_s,
            match=lambda e: e.image_id == image_id,
        )

    def keys(self, prefix: str) -> list[str]:
        async def go() -> list[str]:
            async with FilesystemStore(self.root) as store:
                return [i.key async for i in store.list(prefix)]

        return self.run(go())


@pytest.fixture
def world(kafka_bootstrap, tmp_path) -> Iterator[World]:
    w = World(kafka_bootstrap, tmp_path)
    w.produce("gallery-settings", GallerySettingsV1(gallery_id="manual-g", processing_mode="manual", profile="thumbs"))  # fmt: skip
    w.produce("gallery-settings", GallerySettingsV1(gallery_id="bounded-g", max_concurrent_jobs=1))  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DARKROOM_")}
    env = {
        **clean,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DARKROOM_TOPIC_PREFIX": w.prefix,
        "DARKROOM_TOPIC_PARTITIONS": "2",
        "DARKROOM_DATA_DIR": str(tmp_path / "data"),
        "DARKROOM_STORAGE__ROOT": str(w.root),
        "DARKROOM_INGEST_WEB_PORT": str(free_port()),
        "DARKROOM_LOG_JSON": "false",
    }
    log = (tmp_path / "ingest.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "darkroom_ingest"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield w
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        if proc.returncode not in (0, -15):
            print((tmp_path / "ingest.log").read_text(errors="replace")[-3000:])


def sentinel(world: World, gallery: str) -> None:
    """Send a bad upload to ``gallery`` and wait for its rejection: everything before it is handled."""
    bad = world.upload(None, gallery, b"this is not an image at all")
    (verdict,) = world.verdicts(bad.image_id, timeout_s=60)
    assert not verdict.accepted


def test_manual_mode_holds_until_start_and_delete_frees_the_bytes(world):
    held = world.upload(JPEG_A, "manual-g")
    sentinel(world, "manual-g")
    assert world.verdicts(held.image_id, want=None) == []

    start = held.model_copy(update={"source": "start", "event_id": uuid.uuid4(), "occurred_at": utcnow()})  # fmt: skip
    world.produce("uploaded", start)
    (verdict,) = world.verdicts(held.image_id)
    assert verdict.accepted
    assert verdict.profile == "thumbs"  # the gallery's profile fills in

    # auto gallery: same bytes twice is a duplicate, until the first is deleted
    first = world.upload(JPEG_A, "auto-g")
    assert world.verdicts(first.image_id)[0].accepted
    dup = world.upload(JPEG_A, "auto-g")
    (rejected,) = world.verdicts(dup.image_id)
    assert (rejected.reason_code, rejected.duplicate_of) == ("duplicate", first.image_id)
    assert world.verdicts(first.image_id)[0].profile is None

    deleted = ImageDeletedV1(
        job_id=first.job_id, gallery_id="auto-g", image_id=first.image_id, correlation_id="c"
    )
    world.produce("image-deleted", deleted)
    world.produce("image-deleted", deleted)  # idempotent
    prefix = f"originals/auto-g/{first.image_id}/"
    deadline = time.monotonic() + 30
    while world.keys(prefix) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert world.keys(prefix) == []
    again = world.upload(JPEG_A, "auto-g")
    (verdict,) = world.verdicts(again.image_id)
    assert verdict.accepted, verdict.reason_message


def test_max_concurrent_jobs_releases_one_job_per_terminal_job(world):
    uploads = [world.upload(JPEG_A, "bounded-g"), world.upload(JPEG_B, "bounded-g")]
    sentinel(world, "bounded-g")
    # The two uploads sit on different partitions of `uploaded`, so either may reach
    # the gallery's worker first: exactly one is released, the other waits.
    sent = {u.image_id: world.verdicts(u.image_id, want=None) for u in uploads}
    [first] = [u for u in uploads if sent[u.image_id]]
    [second] = [u for u in uploads if not sent[u.image_id]]
    assert sent[first.image_id][0].accepted

    done = CatalogedV1(
        job_id=first.job_id, gallery_id="bounded-g", image_id=first.image_id, correlation_id="c",
        status="complete", completed_at=utcnow(),
    )  # fmt: skip
    world.produce("cataloged", done)
    (verdict,) = world.verdicts(second.image_id)
    assert verdict.accepted
