"""A rejection carries a sentence; the library's text is logged with the job id."""

from __future__ import annotations

import asyncio
import logging
import struct
import zlib
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from darkroom_common.metrics import Metrics
from darkroom_common.storage import FilesystemStore
from darkroom_ingest.settings import IngestSettings
from darkroom_ingest.validate import validate_upload
from darkroom_schemas import UploadedV1


class _Index:
    def image_for(self, gallery_id: str, sha256: str) -> str | None:
        return None

    def count(self, gallery_id: str) -> int:
        return 0

    def add(self, gallery_id: str, sha256: str, image_id: str) -> None:
        return None


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_header_libvips_refuses_is_a_sentence_with_the_detail_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A PNG whose chunks and CRCs are all sound but whose IHDR declares bit depth 7,
    # which the PNG spec (11.2.2) does not allow: the structure walk passes, libvips refuses.
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 7, 2, 0, 0, 0))
    png += _chunk(b"IDAT", zlib.compress(b"\0" * 40)) + _chunk(b"IEND", b"")
    store = FilesystemStore(tmp_path / "store")
    key = "originals/g1/img1/odd.png"
    asyncio.run(store.put(key, png))
    event = UploadedV1(
        job_id="job-img1", gallery_id="g1", image_id="img1", correlation_id="c",
        object_key=key, filename="odd.png", size_bytes=len(png),
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="darkroom_ingest.validate"):
        out = asyncio.run(
            validate_upload(
                event,
                store=store,
                index=_Index(),
                settings=IngestSettings(),
                metrics=Metrics(CollectorRegistry()),
            )
        )
    assert not out.accepted
    assert (out.reason_code, out.reason_message) == (
        "decode_error",
        "The PNG header cannot be read.",
    )
    [record] = [r for r in caplog.records if r.getMessage() == "upload rejected"]
    assert record.job_id == "job-img1"  # type: ignore[attr-defined]
    assert "pngload" in record.detail  # type: ignore[attr-defined]
