"""The raw-provider handler on real RAW files and a real filesystem store."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest
import pyvips

from darkroom_common.metrics import Metrics
from darkroom_common.storage import FilesystemStore
from darkroom_imaging.exiftool import shared_exiftool
from darkroom_imaging.raw import DEFAULT_MASTER_BOX, DEFAULT_MASTER_QUALITY, DEFAULT_POLICY
from darkroom_raw_provider.develop import develop_raw, needed_long_edge, wants
from darkroom_raw_provider.settings import RawProviderSettings
from darkroom_schemas import ImageMetadata, ProbeInfo, ValidatedV1


def develop_raw_(event, **kw):
    """:func:`develop_raw` counting in the process registry, as the worker does."""
    return develop_raw(event, metrics=Metrics.of(), **kw)


CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
IDS = {"job_id": "j1", "gallery_id": "g1", "image_id": "i1", "correlation_id": "c1"}


def raw_event(key: str, fmt: str, width: int, height: int, orientation: int = 1) -> ValidatedV1:
    return ValidatedV1(
        **IDS,
        accepted=True,
        object_key=key,
        filename=Path(key).name,
        sha256="0" * 64,
        is_raw=True,
        probe=ProbeInfo(
            format=fmt,
            mime_type="image/x-raw",
            width=width,
            height=height,
            pixels=width * height,
            orientation=orientation,
        ),
        metadata=ImageMetadata(make="Canon", model="EOS 450D"),
    )


@pytest.mark.parametrize(
    ("size", "orientation", "box", "expected"),
    [
        ((3522, 2348), 1, (1920, 1080), 1620),  # 3:2 inside 16:9 is bound by the height
        ((2348, 3522), 1, (1920, 1080), 1080),  # portrait
        ((3522, 2348), 6, (1920, 1080), 1080),  # rotated by EXIF: displayed as portrait
        ((800, 600), 1, (1920, 1080), 800),  # never more than the sensor
    ],
)
def test_needed_long_edge(size, orientation, box, expected):
    probe = ProbeInfo(
        format="cr2",
        mime_type="x",
        width=size[0],
        height=size[1],
        pixels=1,
        orientation=orientation,
    )
    assert needed_long_edge(probe, box) == expected
    assert needed_long_edge(None, box) == 1920


def test_the_engine_defaults_darkroom_render_uses_are_the_services():
    """``darkroom render`` develops with raw.py's defaults; they must be this service's."""
    settings = RawProviderSettings()
    assert settings.policy == DEFAULT_POLICY
    assert settings.master_box == DEFAULT_MASTER_BOX
    assert settings.master_quality == DEFAULT_MASTER_QUALITY


def test_only_accepted_raw_originals_are_developed():
    event = raw_event("k", "cr2", 10, 10)
    assert wants(event)
    assert not wants(event.model_copy(update={"derived_from": "raw-key"}))
    assert not wants(event.model_copy(update={"accepted": False}))
    assert not wants(event.model_copy(update={"is_raw": False}))


@pytest.fixture
def store(tmp_path):
    return FilesystemStore(tmp_path / "store")


def put(store: FilesystemStore, rel: str) -> str:
    key = f"originals/g1/i1/{Path(rel).name}"
    asyncio.run(store.put(key, (CORPUS / rel).read_bytes()))
    return key


def test_cr2_embedded_preview_becomes_a_validated_master(store, tmp_path):
    key = put(store, "raw/cr2_canon_img5952.cr2")
    settings = RawProviderSettings(policy="embedded-preview")
    out = asyncio.run(
        develop_raw_(raw_event(key, "cr2", 3522, 2348), store=store, settings=settings)
    )
    assert out.accepted
    assert out.derived_from == key
    assert out.object_key == "masters/g1/i1/master.jpg"
    assert not out.is_raw
    assert out.metadata is not None
    assert out.metadata.make == "Canon"  # the job keeps the RAW's EXIF
    data = asyncio.run(store.get_bytes(out.object_key))
    assert hashlib.sha256(data).hexdigest() == out.sha256
    image = pyvips.Image.new_from_buffer(data, "")
    assert (image.width, image.height) == (out.probe.width, out.probe.height)
    # The embedded 1728x1152 preview covers the 1620x1080 the largest variant needs.
    assert max(image.width, image.height) >= 1620
    assert max(image.width, image.height) < 3522
    # The master carries the RAW's capture EXIF (sha256 above is of these bytes), upright.
    (tmp_path / "master.jpg").write_bytes(data)
    tags = shared_exiftool().read_tags(tmp_path / "master.jpg")
    assert (tags["Make"], tags["Model"], tags["ISO"]) == ("Canon", "Canon EOS 30D", 640)
    assert tags["LensModel"] == "EF-S18-55mm f/3.5-5.6"
    assert "Orientation" not in tags


def test_garbage_raw_is_rejected_with_the_engine_reason(store):
    key = put(store, "raw/metadata_only/exiftool_Panasonic.rw2")
    out = asyncio.run(
        develop_raw_(
            raw_event(key, "rw2", 3664, 2754),
            store=store,
            settings=RawProviderSettings(policy="develop"),
        )
    )
    assert not out.accepted
    assert out.reason_code in {"raw_garbage", "raw_no_image_data"}
    assert out.reason_message
    assert not asyncio.run(store.exists("masters/g1/i1/master.jpg"))


def test_missing_original_is_a_rejection_not_a_crash(store):
    out = asyncio.run(
        develop_raw_(
            raw_event("originals/g1/i1/gone.cr2", "cr2", 10, 10),
            store=store,
            settings=RawProviderSettings(),
        )
    )
    assert not out.accepted
    assert out.reason_code == "missing_original"


def test_the_decoders_words_go_to_the_log_with_the_job_id_not_to_the_event(store, caplog):
    """A RAW cut to its first 2 %: LibRaw's I/O error is logged, the event has a sentence."""
    data = (CORPUS / "raw/metadata_only/exiftool_Panasonic.rw2").read_bytes()
    key = "originals/g1/i1/cut.rw2"
    asyncio.run(store.put(key, data[: len(data) // 50]))
    with caplog.at_level("WARNING", logger="darkroom_raw_provider.develop"):
        out = asyncio.run(
            develop_raw_(
                raw_event(key, "rw2", 3664, 2754), store=store, settings=RawProviderSettings()
            )
        )
    assert not out.accepted
    assert out.reason_code == "raw_no_image_data"
    assert out.reason_message == "The RW2 file's image data are missing or unreadable."
    [record] = [r for r in caplog.records if r.getMessage() == "development failed"]
    assert record.job_id == "j1"
    assert record.detail == "Input/output error"
