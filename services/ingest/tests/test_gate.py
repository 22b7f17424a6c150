"""The by-gallery handler on real files, a filesystem store and the runtime's own tables.

The tables are :class:`darkroom_runtime.Table` in memory, written the way a lane
writes them: inside an event's :class:`~darkroom_runtime.tables.RecordScope`, then
persisted. A handler that mutated a value it read instead of replacing it would lose
the change here as it would in a worker. The gallery settings are a tiny fake.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from darkroom_common.errors import PoisonEvent
from darkroom_common.gallery_settings import GallerySettingsCache
from darkroom_common.metrics import Metrics
from darkroom_common.ports import GallerySettingsUnavailable
from darkroom_common.storage import FilesystemStore
from darkroom_ingest.gate import GateState, IngestHandler, TableGalleryIndex
from darkroom_ingest.routes import BY_GALLERY
from darkroom_ingest.settings import IngestSettings
from darkroom_runtime import Emit, Table
from darkroom_runtime.tables import RecordScope
from darkroom_schemas import (
    CatalogedV1,
    GallerySettingsV1,
    ImageDeletedV1,
    UploadedV1,
    ValidatedV1,
    utcnow,
)
from darkroom_schemas.topics import stage

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
JPEG_A = CORPUS / "jpeg" / "exif_gps_nikon_coolpix_p6000.jpg"
JPEG_B = CORPUS / "jpeg" / "exif_gps_only_thompson_springs.jpg"
NOT_AN_IMAGE = CORPUS / "bad" / "html_renamed.jpg"


class Galleries:
    """The gallery-settings port: fixed settings, defaults for any other gallery."""

    def __init__(self, *settings: GallerySettingsV1) -> None:
        self.known = {s.gallery_id: s for s in settings}

    async def get(self, gallery_id: str) -> GallerySettingsV1:
        return self.known.get(gallery_id) or GallerySettingsV1(gallery_id=gallery_id)


class Gate:
    """An :class:`IngestHandler` over one partition of the stage's tables."""

    def __init__(self, store: FilesystemStore, galleries: Any) -> None:
        self.store = store
        self.registry = CollectorRegistry()
        self.tables = {
            name: Table(
                name,
                changelog=f"test.{name}-changelog",
                partitions=1,
                lane=BY_GALLERY,
                key_codec="json",
                value_codec="json",
            )
            for name in stage("ingest").state
        }
        for table in self.tables.values():
            table.store(0)
            table.mark_ready(0)
        self.index = TableGalleryIndex(
            self.tables["ingest-content"],
            self.tables["ingest-gallery-counts"],
            self.tables["ingest-image-content"],
        )
        self.state = GateState(
            held=self.tables["ingest-held"],
            queued=self.tables["ingest-queued"],
            active=self.tables["ingest-active"],
            verdicts=self.tables["ingest-verdicts"],
        )
        self.handler = IngestHandler(
            store, self.index, self.state, galleries, IngestSettings(), Metrics(self.registry)
        )
        self._offset = 0

    async def __call__(self, event: Any) -> list[ValidatedV1]:
        """Handle ``event`` as a lane does; return the ``validated`` events it sends."""
        scope = RecordScope(0, BY_GALLERY)
        with scope.active():
            emits = await self.handler(event)
        for table in list(scope.writes):
            changes = table.pending(scope)
            self._offset += len(changes)
            table.persist(0, changes, self._offset)
        assert all(isinstance(e, Emit) and e.topic == "validated" for e in emits)
        return [e.value for e in emits]  # type: ignore[misc]

    async def upload(self, path: Path, gallery: str, **fields: Any) -> UploadedV1:
        """Store ``path`` as a new image of ``gallery``; return its ``uploaded`` event."""
        image_id = uuid.uuid4().hex
        key = f"originals/{gallery}/{image_id}/{path.name}"
        data = path.read_bytes()
        await self.store.put(key, data)
        return UploadedV1(
            job_id=image_id, gallery_id=gallery, image_id=image_id, correlation_id="c",
            object_key=key, filename=path.name, size_bytes=len(data), **fields,
        )  # fmt: skip


def start(upload: UploadedV1) -> UploadedV1:
    """The catalog API's start of a held upload."""
    return upload.model_copy(
        update={"source": "start", "event_id": uuid.uuid4(), "occurred_at": utcnow()}
    )


def done(upload: UploadedV1) -> CatalogedV1:
    """The job of ``upload`` completed."""
    return CatalogedV1(
        job_id=upload.job_id, gallery_id=upload.gallery_id, image_id=upload.image_id,
        correlation_id="c", status="complete", completed_at=utcnow(),
    )  # fmt: skip


def deleted(upload: UploadedV1) -> ImageDeletedV1:
    """A delete of the image of ``upload``."""
    return ImageDeletedV1(
        job_id=upload.job_id, gallery_id=upload.gallery_id, image_id=upload.image_id,
        correlation_id="c",
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "store")


MANUAL = GallerySettingsV1(gallery_id="manual-g", processing_mode="manual", profile="thumbs")
BOUNDED = GallerySettingsV1(gallery_id="bounded-g", max_concurrent_jobs=1)


@pytest.fixture
def gate(store: FilesystemStore) -> Gate:
    return Gate(store, Galleries(MANUAL, BOUNDED))


async def test_an_upload_is_validated_counted_and_its_bytes_remembered(gate):
    first = await gate.upload(JPEG_A, "auto-g")
    [verdict] = await gate(first)
    assert verdict.accepted, verdict.reason_message
    assert (verdict.image_id, verdict.profile) == (first.image_id, None)
    assert gate.index.count("auto-g") == 1
    assert gate.index.image_for("auto-g", verdict.sha256) == first.image_id
    read = gate.registry.get_sample_value("darkroom_object_bytes_total", {"direction": "read"})
    assert read == JPEG_A.stat().st_size

    [again] = await gate(first)  # redelivered: accepted again, not counted twice
    assert again.accepted
    assert gate.index.count("auto-g") == 1
    dup = await gate.upload(JPEG_A, "auto-g")
    [rejected] = await gate(dup)
    assert (rejected.reason_code, rejected.duplicate_of) == ("duplicate", first.image_id)


async def test_manual_mode_holds_an_accepted_upload_until_it_is_started(gate):
    held = await gate.upload(JPEG_A, "manual-g")
    assert await gate(held) == []
    assert gate.state.held.get(held.image_id)["accepted"] is True

    bad = await gate.upload(NOT_AN_IMAGE, "manual-g")
    [rejected] = await gate(bad)  # a rejection is never held
    assert not rejected.accepted
    retried = await gate.upload(JPEG_B, "manual-g", source="retry")
    [released] = await gate(retried)  # someone already asked for a retry
    assert released.accepted

    [verdict] = await gate(start(held))
    assert verdict.accepted
    assert verdict.profile == "thumbs"  # the gallery's profile fills in
    assert gate.state.held.get(held.image_id) is None
    [again] = await gate(start(held))  # nothing held any more: validated again, not lost
    assert (again.accepted, again.image_id) == (True, held.image_id)


async def test_max_concurrent_jobs_queues_and_releases_one_job_per_terminal_job(gate):
    first = await gate.upload(JPEG_A, "bounded-g")
    second = await gate.upload(JPEG_B, "bounded-g")
    [released] = await gate(first)
    assert released.image_id == first.image_id
    assert await gate(second) == []
    assert [q["image_id"] for q in gate.state.queued.get("bounded-g")] == [second.image_id]
    [redelivered] = await gate(first)  # already active: sent again, no second slot
    assert redelivered.image_id == first.image_id
    assert gate.state.active.get("bounded-g") == [first.image_id]

    [next_one] = await gate(done(first))
    assert (next_one.image_id, next_one.accepted) == (second.image_id, True)
    assert gate.state.active.get("bounded-g") == [second.image_id]
    assert gate.state.queued.get("bounded-g") == []


async def test_a_delete_forgets_the_bytes_frees_the_slot_and_removes_the_originals(gate, store):
    first = await gate.upload(JPEG_A, "bounded-g")
    second = await gate.upload(JPEG_B, "bounded-g")
    await gate(first)
    await gate(second)  # queued behind first

    [released] = await gate(deleted(first))
    assert released.image_id == second.image_id
    assert [i.key async for i in store.list(f"originals/bounded-g/{first.image_id}/")] == []
    assert gate.index.count("bounded-g") == 1
    assert await gate(deleted(first)) == []  # idempotent
    assert gate.index.count("bounded-g") == 1

    again = await gate.upload(JPEG_A, "auto-g")
    await gate(again)
    await gate(deleted(again))
    [accepted] = await gate(await gate.upload(JPEG_A, "auto-g"))
    assert accepted.accepted, accepted.reason_message  # the same bytes may come back


async def test_a_delete_drops_a_held_upload(gate):
    held = await gate.upload(JPEG_A, "manual-g")
    await gate(held)
    await gate(deleted(held))
    assert gate.state.held.get(held.image_id) is None
    assert gate.index.count("manual-g") == 0


def test_an_image_indexed_before_the_by_image_table_is_found_by_a_scan():
    content = {"g1/abc": "i1", "g2/abc": "i1", "g1/def": "i2"}
    counts = {"g1": 2, "g2": 1}
    index = TableGalleryIndex(content, counts, by_image={})
    assert index.remove("g1", "i1")
    assert content == {"g2/abc": "i1", "g1/def": "i2"}
    assert counts == {"g1": 1, "g2": 1}
    assert not index.remove("g1", "i1")
    assert not TableGalleryIndex(content, counts).remove("g1", "nobody")


async def test_unread_gallery_settings_are_a_retriable_error(store):
    never_started = GallerySettingsCache("127.0.0.1:9", "nowhere.gallery-settings", wait_s=0.05)
    gate = Gate(store, never_started)
    with pytest.raises(GallerySettingsUnavailable) as info:
        await gate(await gate.upload(JPEG_A, "g1"))
    assert info.value.retriable
    assert gate.index.count("g1") == 0


async def test_an_event_of_another_kind_is_dead_lettered(gate):
    upload = await gate.upload(JPEG_A, "g1")
    verdict = ValidatedV1(
        job_id=upload.job_id, gallery_id="g1", image_id=upload.image_id, correlation_id="c",
        accepted=False, object_key=upload.object_key, filename="x.jpg",
        reason_code="x", reason_message="x",
    )  # fmt: skip
    with pytest.raises(PoisonEvent) as info:
        await gate(verdict)
    assert (info.value.reason_code, info.value.retriable) == ("unexpected_event", False)


def reused(gate: Gate) -> float:
    """How many uploads the gate answered from a stored verdict."""
    value = gate.registry.get_sample_value(
        "darkroom_redelivery_reused_total", {"service": "ingest", "kind": "verdict"}
    )
    return value or 0.0


def bytes_read(gate: Gate) -> float:
    """Bytes the gate read from the object store."""
    value = gate.registry.get_sample_value("darkroom_object_bytes_total", {"direction": "read"})
    return value or 0.0


async def test_a_re_sent_upload_gets_its_stored_verdict_without_reading_the_original(gate, store):
    first = await gate.upload(JPEG_A, "auto-g")
    [verdict] = await gate(first)
    assert verdict.accepted, verdict.reason_message
    read = bytes_read(gate)
    await store.delete(first.object_key)  # a re-read would now be missing_original

    [redelivered] = await gate(first)  # the same event again
    assert redelivered == verdict  # the same validated event, event_id included
    replayed = first.model_copy(update={"event_id": uuid.uuid4(), "occurred_at": utcnow()})
    [again] = await gate(replayed)  # the same job attempt, sent anew
    assert again == verdict
    assert (bytes_read(gate), reused(gate)) == (read, 2)
    assert gate.index.count("auto-g") == 1


async def test_a_new_attempt_or_a_new_job_is_validated_again(gate, store):
    first = await gate.upload(JPEG_A, "auto-g")
    [verdict] = await gate(first)
    read = bytes_read(gate)

    retry = first.model_copy(
        update={"event_id": uuid.uuid4(), "attempt": 2, "source": "retry", "occurred_at": utcnow()}
    )
    [retried] = await gate(retry)
    assert (retried.accepted, retried.attempt) == (True, 2)
    assert retried.event_id != verdict.event_id
    assert bytes_read(gate) == 2 * read
    assert reused(gate) == 0

    # A re-upload of the image under a new job, with other bytes at the same key.
    data = JPEG_B.read_bytes()
    await store.put(first.object_key, data)
    reupload = first.model_copy(
        update={"event_id": uuid.uuid4(), "job_id": "job-2", "size_bytes": len(data)}
    )
    [other] = await gate(reupload)
    assert other.accepted, other.reason_message
    assert other.sha256 not in (None, verdict.sha256)
    assert bytes_read(gate) == 2 * read + len(data)
    [redelivered] = await gate(reupload)  # the newest job's verdict is the one kept
    assert redelivered == other
    assert reused(gate) == 1


async def test_a_rejection_is_sent_again_and_a_missing_original_is_looked_for_again(gate, store):
    bad = await gate.upload(NOT_AN_IMAGE, "auto-g")
    [rejected] = await gate(bad)
    assert not rejected.accepted
    assert rejected.reason_code not in (None, "missing_original")
    await store.delete(bad.object_key)
    [again] = await gate(bad)
    assert again == rejected  # the same failure, not missing_original
    assert reused(gate) == 1

    lost = await gate.upload(JPEG_A, "auto-g")
    await store.delete(lost.object_key)
    [missing] = await gate(lost)
    assert missing.reason_code == "missing_original"
    await store.put(lost.object_key, JPEG_A.read_bytes())  # restored by an operator
    [found] = await gate(lost)
    assert found.accepted, found.reason_message


async def test_an_s3_notification_is_matched_by_its_event_only(gate, store):
    first = await gate.upload(JPEG_A, "auto-g", source="s3-notification")
    [verdict] = await gate(first)
    [redelivered] = await gate(first)
    assert redelivered == verdict
    # The same key written again: the bridge's event has the same job id and attempt.
    await store.put(first.object_key, JPEG_B.read_bytes())
    overwrite = first.model_copy(update={"event_id": uuid.uuid4(), "occurred_at": utcnow()})
    [other] = await gate(overwrite)
    assert other.sha256 != verdict.sha256
    assert reused(gate) == 1


async def test_a_delete_forgets_the_stored_verdict(gate, store):
    first = await gate.upload(JPEG_A, "auto-g")
    await gate(first)
    assert gate.state.verdicts.get(first.image_id) is not None
    await gate(deleted(first))
    assert gate.state.verdicts.get(first.image_id) is None
    [again] = await gate(first)  # its original is gone with it
    assert again.reason_code == "missing_original"


async def test_a_re_sent_upload_of_a_held_job_is_held_again_and_a_start_releases_it(gate, store):
    held = await gate.upload(JPEG_A, "manual-g")
    assert await gate(held) == []
    stored = gate.state.held.get(held.image_id)
    await store.delete(held.object_key)
    assert await gate(held) == []  # held again, with the same verdict
    assert gate.state.held.get(held.image_id) == stored
    [released] = await gate(start(held))
    assert (released.accepted, str(released.event_id)) == (True, stored["event_id"])
    [again] = await gate(start(held))  # nothing held: the stored verdict, not a re-read
    assert again.event_id == released.event_id
    assert reused(gate) == 2


async def test_a_re_sent_upload_of_an_ended_job_takes_no_slot(gate, store):
    first = await gate.upload(JPEG_A, "bounded-g")
    second = await gate.upload(JPEG_B, "bounded-g")
    [verdict] = await gate(first)
    assert await gate(done(first)) == []  # its job ended: the slot is free
    assert gate.state.active.get("bounded-g") == []

    [again] = await gate(first)  # re-sent after its job ended (redelivery, operator)
    assert again == verdict
    assert gate.state.active.get("bounded-g") == []  # no cataloged would ever free it
    [released] = await gate(second)  # so the next upload is not queued behind it
    assert released.image_id == second.image_id
    assert gate.state.active.get("bounded-g") == [second.image_id]
