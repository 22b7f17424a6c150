"""The capture date's source travels from the file to the validated event and its wire form."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry

from darkroom_common.metrics import Metrics
from darkroom_common.storage import FilesystemStore
from darkroom_imaging.exiftool import ExifTool
from darkroom_ingest.settings import IngestSettings
from darkroom_ingest.validate import validate_upload
from darkroom_schemas import UploadedV1, ValidatedV1
from darkroom_schemas.wire import decode, encode

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)


class _Index:
    def image_for(self, gallery_id: str, sha256: str) -> str | None:
        return None

    def count(self, gallery_id: str) -> int:
        return 0

    def add(self, gallery_id: str, sha256: str, image_id: str) -> None:
        return None


def test_iptc_only_date_reaches_the_validated_event_with_its_source(tmp_path: Path) -> None:
    photo = tmp_path / "iptc.jpg"
    shutil.copyfile(CORPUS / "jpeg/exif_lens_gps_iphone6.jpg", photo)
    with ExifTool(common_args=()) as tool:
        tool.execute("-overwrite_original", "-AllDates=", "-XMP:all=", "-IPTC:all=", str(photo))
        tool.execute(
            "-overwrite_original",
            "-GPSDateStamp=",
            "-GPSTimeStamp=",
            "-IPTC:DateCreated=2021:06:05",
            "-IPTC:TimeCreated=14:03:02-05:00",
            str(photo),
        )
    store = FilesystemStore(tmp_path / "store")
    key = "originals/g1/img1/iptc.jpg"
    data = photo.read_bytes()
    asyncio.run(store.put(key, data))
    event = UploadedV1(
        job_id="job-img1", gallery_id="g1", image_id="img1", correlation_id="c",
        object_key=key, filename="iptc.jpg", size_bytes=len(data),
    )  # fmt: skip
    out = asyncio.run(
        validate_upload(
            event,
            store=store,
            index=_Index(),
            settings=IngestSettings(),
            metrics=Metrics(CollectorRegistry()),
        )
    )
    assert out.accepted
    assert out.metadata is not None
    assert out.metadata.date_time_original == "2021-06-05T14:03:02-05:00"
    assert out.metadata.date_time_original_source == "IPTC:DateCreated"
    assert "no_exif" not in out.metadata.warnings
    back = decode(encode(out))
    assert isinstance(back, ValidatedV1)
    assert back.metadata == out.metadata
