"""The ingest decision on real files in a real filesystem store."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from darkroom_common.metrics import Metrics
from darkroom_common.storage import FilesystemStore
from darkroom_imaging.formats import Format
from darkroom_imaging.outcomes import Reason
from darkroom_ingest.settings import IngestSettings
from darkroom_ingest.validate import validate_upload
from darkroom_schemas import UploadedV1

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)


class DictIndex:
    """The gallery index as a plain dict: the edge the stage's tables implement."""

    def __init__(self) -> None:
        self.content: dict[str, str] = {}
        self.counts: dict[str, int] = {}

    def image_for(self, gallery_id: str, sha256: str) -> str | None:
        return self.content.get(f"{gallery_id}/{sha256}")

    def count(self, gallery_id: str) -> int:
        return self.counts.get(gallery_id, 0)

    def add(self, gallery_id: str, sha256: str, image_id: str) -> None:
        if f"{gallery_id}/{sha256}" not in self.content:
            self.content[f"{gallery_id}/{sha256}"] = image_id
            self.counts[gallery_id] = self.count(gallery_id) + 1


@pytest.fixture
def store(tmp_path):
    return FilesystemStore(tmp_path / "store")


def upload(
    store: FilesystemStore,
    rel: str,
    image_id: str = "img1",
    gallery: str = "g1",
    name: str | None = None,
) -> UploadedV1:
    data = (CORPUS / rel).read_bytes()
    key = f"originals/{gallery}/{image_id}/{Path(rel).name}"
    asyncio.run(store.put(key, data))
    return UploadedV1(
        job_id=f"job-{image_id}", gallery_id=gallery, image_id=image_id, correlation_id="c",
        object_key=key, filename=name or Path(rel).name, size_bytes=len(data),
    )  # fmt: skip


def validate(event, store, index=None, **settings):
    return asyncio.run(
        validate_upload(
            event,
            store=store,
            index=index or DictIndex(),
            settings=IngestSettings(**settings),
            metrics=Metrics(CollectorRegistry()),
        )
    )


def test_exif_jpeg_is_accepted_with_probe_metadata_and_sha256(store):
    event = upload(store, "jpeg/exif_gps_tahoe.jpg")
    out = validate(event, store)
    assert out.accepted
    assert (
        out.sha256 == hashlib.sha256((CORPUS / "jpeg/exif_gps_tahoe.jpg").read_bytes()).hexdigest()
    )
    assert out.probe is not None
    assert out.probe.format == "jpeg"
    assert out.metadata is not None
    assert out.metadata.gps_latitude is not None
    assert not out.is_raw
    assert (out.job_id, out.image_id, out.attempt) == (event.job_id, event.image_id, event.attempt)


def test_cr2_is_accepted_as_raw(store):
    out = validate(upload(store, "raw/cr2_canon_img5952.cr2"), store)
    assert out.accepted
    assert out.is_raw
    assert out.metadata.make == "Canon"


def _corpus_table() -> dict[str, Format | Reason]:
    """The probe's verdict for every corpus file (libs/imaging/tests/test_corpus_probe.py).

    Loaded from that file so one table states both levels: what the probe says of a file
    is what the validator must decide.
    """
    path = Path(__file__).resolve().parents[3] / "libs/imaging/tests/test_corpus_probe.py"
    spec = importlib.util.spec_from_file_location("corpus_probe_table", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EXPECTED


CORPUS_TABLE = _corpus_table()


@pytest.mark.parametrize("rel", sorted(CORPUS_TABLE))
def test_every_corpus_file_gets_its_probe_verdict_from_the_validator(store, rel):
    """bad/ files and metadata-only RAWs get their specific reason code; the rest are accepted."""
    expected = CORPUS_TABLE[rel]
    out = validate(upload(store, rel), store)
    if isinstance(expected, Reason):
        assert (out.accepted, out.reason_code) == (False, expected.value), out.reason_message
        assert out.reason_message
        assert out.sha256 == hashlib.sha256((CORPUS / rel).read_bytes()).hexdigest()
    else:
        assert out.accepted, out.reason_message
        assert out.probe is not None
        assert out.probe.format == expected.value
        assert out.metadata is not None


def test_missing_original_is_rejected(store):
    event = upload(store, "jpeg/exif_gps_tahoe.jpg")
    asyncio.run(store.delete(event.object_key))
    out = validate(event, store)
    assert (out.accepted, out.reason_code) == (False, "missing_original")


def test_declared_size_over_the_limit_is_rejected_before_download(store):
    event = upload(store, "jpeg/exif_gps_tahoe.jpg")
    out = validate(event, store, max_upload_bytes=1000)
    assert (out.accepted, out.reason_code) == (False, "file_too_large")


def test_format_outside_the_allowlist_is_rejected(store):
    out = validate(upload(store, "formats/png_rgba_alpha.png"), store, allowed_formats=["jpeg"])
    assert (out.accepted, out.reason_code) == (False, "format_not_allowed")
    assert "PNG" in out.reason_message


def test_same_bytes_twice_in_a_gallery_is_a_duplicate_but_a_redelivery_is_not(store):
    index = DictIndex()
    first = upload(store, "orientation/Landscape_2.jpg", image_id="a")
    assert validate(first, store, index).accepted
    assert validate(first, store, index).accepted  # the same upload redelivered
    second = upload(store, "orientation/Landscape_2.jpg", image_id="b")
    out = validate(second, store, index)
    assert (out.accepted, out.reason_code, out.duplicate_of) == (False, "duplicate", "a")
    other_gallery = upload(store, "orientation/Landscape_2.jpg", image_id="c", gallery="g2")
    assert validate(other_gallery, store, index).accepted
    assert index.count("g1") == 1


def test_full_gallery_rejects_new_images(store):
    index = DictIndex()
    assert validate(
        upload(store, "orientation/Landscape_2.jpg", image_id="a"),
        store,
        index,
        max_images_per_gallery=1,
    ).accepted
    out = validate(
        upload(store, "orientation/Landscape_3.jpg", image_id="b"),
        store,
        index,
        max_images_per_gallery=1,
    )
    assert (out.accepted, out.reason_code) == (False, "gallery_full")


@pytest.mark.parametrize(
    "key",
    [
        "originals/g2/img1/exif_gps_tahoe.jpg",  # another gallery's original
        "originals/g1/img2/exif_gps_tahoe.jpg",  # another image's original
        "originals/g1/exif_gps_tahoe.jpg",  # no image folder
        "originals/g1/img1/../img2/x.jpg",  # traversal
    ],
)
def test_an_object_key_outside_the_image_is_refused_unread(store, key):
    event = upload(store, "jpeg/exif_gps_tahoe.jpg").model_copy(update={"object_key": key})
    out = validate(event, store)
    assert (out.accepted, out.reason_code) == (False, "foreign_object_key")
    assert "g1" in out.reason_message
    assert out.sha256 is None
