"""Magic-byte sniffing and the TIFF walk, on real corpus files and minimal headers."""

from __future__ import annotations

import io
import os
import struct
import time
from pathlib import Path

import pytest

from darkroom_imaging.formats import EXTENSIONS, Format, TiffError, read_tiff, sniff, tiff_format

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\0\x10JFIF", Format.JPEG),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Format.PNG),
        (b"GIF87a\x01\0\x01\0", Format.GIF),
        (b"RIFF\x10\0\0\0WEBPVP8 ", Format.WEBP),
        (b"\xff\x0a\xba\x21", Format.JXL),
        (b"\0\0\0\x0cJXL \r\n\x87\n", Format.JXL),
        (b"FUJIFILMCCD-RAW 0201", Format.RAF),
        (b"II*\0\x08\0\0\0", Format.TIFF),
        (b"MM\0*\0\0\0\x08", Format.TIFF),
        (b"\0\0\0\x18ftypcrx \0\0\0\x01crx isom", Format.CR3),
        (b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf", Format.AVIF),
        (b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic", Format.HEIC),
        (b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", Format.HEIC),
        (b"\0\0\0\x18ftypisom\0\0\0\0isommp41", None),
        (b"<svg xmlns=", None),
        (b"<!DOCTYPE html>", None),
        (b"", None),
    ],
)
def test_sniff(head: bytes, expected: Format | None) -> None:
    assert sniff(head) is expected


@pytest.mark.parametrize(
    ("rel", "extension", "expected"),
    [
        ("raw/cr2_canon_img5952.cr2", ".cr2", Format.CR2),
        ("raw/cr2_canon_img5952.cr2", ".tif", Format.CR2),
        ("raw/metadata_only/exiftool_Nikon.nef", ".nef", Format.NEF),
        # Nikon Make with a CFA SubIFD is a NEF whatever the name says
        ("raw/metadata_only/exiftool_Nikon.nef", ".tif", Format.NEF),
        ("raw/metadata_only/exiftool_Nikon.nef", ".nrw", Format.NRW),
        ("raw/metadata_only/exiftool_DNG.dng", ".nef", Format.DNG),
        ("raw/metadata_only/exiftool_Panasonic.rw2", "", Format.RW2),
        ("raw/metadata_only/exifpy_sony_a7iii.arw", ".arw", Format.ARW),
        ("raw/kdc_kodak_dc50.kdc", ".kdc", Format.KDC),
        # Kodak Make with a CFA IFD: KDC even when named .tif
        ("raw/kdc_kodak_dc50.kdc", ".tif", Format.KDC),
        ("formats/tiff_camera_olympus_pc260001.tif", ".tif", Format.TIFF),
    ],
)
def test_tiff_based_formats_by_content(rel: str, extension: str, expected: Format) -> None:
    path = CORPUS / rel
    with path.open("rb") as f:
        head = f.read(16)
        info = read_tiff(f, path.stat().st_size)
    assert tiff_format(info, head, extension) is expected


def test_read_tiff_reports_the_raw_ifd_of_a_nef() -> None:
    path = CORPUS / "raw/metadata_only/exiftool_Nikon.nef"
    with path.open("rb") as f:
        info = read_tiff(f, path.stat().st_size)
    assert info.make == "NIKON CORPORATION"
    largest = info.largest()
    assert largest is not None
    assert (largest.width, largest.height, largest.photometric) == (3040, 2014, 32803)


def test_read_tiff_rejects_non_tiff(tmp_path: Path) -> None:
    path = tmp_path / "x.tif"
    path.write_bytes(b"XX*\0\x08\0\0\0")
    with path.open("rb") as f, pytest.raises(TiffError):
        read_tiff(f, 8)


def test_extension_aliases() -> None:
    for ext in (".jpg", ".jpeg", ".jpe"):
        assert EXTENSIONS[ext] == {Format.JPEG}
    assert EXTENSIONS[".tif"] == EXTENSIONS[".tiff"] == {Format.TIFF}
    assert Format.HEIC in EXTENSIONS[".heic"]
    assert Format.HEIC in EXTENSIONS[".heif"]


def test_read_tiff_queues_a_repeated_subifd_offset_once() -> None:
    """IFD0 lists one SubIFD 2^20 times: read at once, not in time quadratic in the count."""
    n, sub = 1 << 20, 8 + 18
    data = b"II*\0" + struct.pack("<IHHHII", 8, 1, 330, 4, n, sub + 18) + bytes(4)
    data += struct.pack("<HHHII", 1, 256, 4, 1, 7) + bytes(4) + struct.pack("<I", sub) * n
    started = time.perf_counter()
    info = read_tiff(io.BytesIO(data), len(data))
    assert time.perf_counter() - started < 5
    assert [(i.offset, i.width) for i in info.ifds] == [(8, 0), (sub, 7)]
