"""probe(): limits, declared names, header fields and the failure paths not in the corpus."""

from __future__ import annotations

import os
import shutil
import struct
import time
import zlib
from pathlib import Path

import pytest

from darkroom_imaging.formats import Format
from darkroom_imaging.outcomes import Failure, Reason
from darkroom_imaging.probe import (
    MAX_HEADER_STRUCTURES,
    MAX_INFLATED_METADATA,
    Probe,
    ProbeLimits,
    icc_description,
    probe,
)

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
TAHOE = CORPUS / "jpeg/exif_gps_tahoe.jpg"


def _ok(result: Probe | Failure) -> Probe:
    assert isinstance(result, Probe), result
    return result


def _reason(result: Probe | Failure) -> Reason:
    assert isinstance(result, Failure), result
    return result.reason


def test_jpeg_fields() -> None:
    p = _ok(probe(TAHOE))
    assert (p.format, p.mime_type, p.width, p.height) == (Format.JPEG, "image/jpeg", 2048, 1536)
    assert (p.frames, p.bit_depth, p.color_space, p.orientation) == (1, 8, "srgb", 1)
    assert p.file_size == TAHOE.stat().st_size
    assert p.to_dict()["pixels"] == 2048 * 1536


@pytest.mark.parametrize(("n", "expected"), [(0, 1), (1, 1), (3, 3), (6, 6), (8, 8)])
def test_orientation_invalid_zero_reads_as_one(n: int, expected: int) -> None:
    p = _ok(probe(CORPUS / f"orientation/Landscape_{n}.jpg"))
    assert p.orientation == expected
    assert (p.display_width, p.display_height) == (1800, 1200)


def test_icc_cmyk_gray_and_animation() -> None:
    cmyk = _ok(probe(CORPUS / "formats/cmyk_swop_icc.jpg"))
    assert (cmyk.color_space, cmyk.icc_description) == ("cmyk", "U.S. Web Coated (SWOP) v2")
    gray = _ok(probe(CORPUS / "formats/grayscale_gray22_icc.jpg"))
    assert (gray.color_space, gray.icc_description) == ("b-w", "Gray Gamma 2.2")
    assert _ok(probe(CORPUS / "formats/gif_animated.gif")).frames == 30
    assert _ok(probe(CORPUS / "formats/webp_animated.webp")).frames == 9
    hdr = _ok(probe(CORPUS / "formats/avif_10bit_hdr_p3_nclx.avif"))
    assert (hdr.bit_depth, hdr.color_space) == (10, "rgb16")
    assert _ok(probe(CORPUS / "formats/png_16bit_rgb.png")).bit_depth == 16


def test_raw_fields() -> None:
    p = _ok(probe(CORPUS / "raw/cr2_canon_img5952.cr2"))
    assert (p.format, p.is_raw, p.width, p.height) == (Format.CR2, True, 3522, 2348)
    assert p.mime_type == "image/x-canon-cr2"


def test_max_pixels_is_configurable() -> None:
    assert _reason(probe(TAHOE, limits=ProbeLimits(max_pixels=1_000_000))) is Reason.TOO_MANY_PIXELS
    giant = CORPUS / "large/giant_20000x14000_gray.jpg"
    assert _ok(probe(giant, limits=ProbeLimits(max_pixels=300_000_000))).pixels == 280_000_000


def test_file_too_large() -> None:
    result = probe(TAHOE, limits=ProbeLimits(max_bytes=100_000))
    assert _reason(result) is Reason.FILE_TOO_LARGE


@pytest.mark.parametrize("name", ["a.jpg", "a.JPEG", "a.jpe", "upload", "photo.bin"])
def test_declared_name_accepted(name: str) -> None:
    assert _ok(probe(TAHOE, declared_name=name)).format is Format.JPEG


@pytest.mark.parametrize("name", ["a.png", "a.nef", "a.tif", "a.heic"])
def test_declared_name_mismatch(name: str) -> None:
    assert _reason(probe(TAHOE, declared_name=name)) is Reason.EXTENSION_MISMATCH


def test_tiff_and_heif_aliases() -> None:
    tiff = CORPUS / "formats/tiff_16bit_rgb_icc.tiff"
    assert _ok(probe(tiff, declared_name="x.tif")).format is Format.TIFF
    heic = CORPUS / "bad/heic_with_jpg_extension.jpg"
    assert _ok(probe(heic, declared_name="x.heif")).format is Format.HEIC
    assert _ok(probe(heic, declared_name="x.HEIC")).format is Format.HEIC


def test_renamed_jpeg_probes_by_content(tmp_path: Path) -> None:
    renamed = tmp_path / "photo.nef"
    shutil.copyfile(CORPUS / "bad/jpeg_with_nef_extension.nef", renamed)
    assert _reason(probe(renamed)) is Reason.EXTENSION_MISMATCH
    assert _ok(probe(renamed, declared_name="photo.jpg")).format is Format.JPEG


def test_dng_named_dng_is_fine_and_nef_is_not() -> None:
    dng = CORPUS / "raw/dng_lg-h815_skia_sample_1mp.dng"
    assert _ok(probe(dng, declared_name="x.DNG")).format is Format.DNG
    assert _reason(probe(dng, declared_name="x.nef")) is Reason.EXTENSION_MISMATCH


def test_truncated_copies(tmp_path: Path) -> None:
    data = TAHOE.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    assert _reason(probe(cut)) is Reason.TRUNCATED
    png = (CORPUS / "formats/png_rgba_alpha.png").read_bytes()
    cut_png = tmp_path / "cut.png"
    cut_png.write_bytes(png[:-12])
    assert _reason(probe(cut_png)) is Reason.TRUNCATED
    webp = (CORPUS / "formats/webp_lossy.webp").read_bytes()
    cut_webp = tmp_path / "cut.webp"
    cut_webp.write_bytes(webp[:5000])
    assert _reason(probe(cut_webp)) is Reason.TRUNCATED
    avif = (CORPUS / "formats/avif_8bit_srgb.avif").read_bytes()
    cut_avif = tmp_path / "cut.avif"
    cut_avif.write_bytes(avif[:5000])
    assert _reason(probe(cut_avif)) is Reason.TRUNCATED
    gif = (CORPUS / "formats/gif_animated.gif").read_bytes()
    cut_gif = tmp_path / "cut.gif"
    cut_gif.write_bytes(gif[:20000])
    assert _reason(probe(cut_gif)) is Reason.TRUNCATED


def test_unreadable_tiff_structure_is_decode_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\0\x08\0\0\0\0\0" + b"\0" * 32)
    assert _reason(probe(bad)) is Reason.DECODE_ERROR


def test_random_bytes_are_unsupported(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(bytes(range(256)) * 4)
    result = probe(junk)
    assert _reason(result) is Reason.UNSUPPORTED_FORMAT


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "absent.jpg")


def test_icc_description_of_garbage_is_none() -> None:
    assert icc_description(b"\0" * 10) is None
    assert icc_description(b"\0" * 128 + b"\0\0\0\x01desc\xff\xff\xff\xff\0\0\0\x10") is None


def _png_chunk(ctype: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + ctype
        + payload
        + struct.pack(">I", zlib.crc32(ctype + payload))
    )


def _with(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_header_floods_are_refused_before_any_reader_walks_them(tmp_path: Path) -> None:
    """500,000 JPEG markers, PNG text chunks or ISO-BMFF boxes: decode_error in bounded time."""
    jpeg = (CORPUS / "jpeg/exif_olympus_c8080wz.jpg").read_bytes()
    png = (CORPUS / "formats/png_rgba_alpha.png").read_bytes()
    avif = (CORPUS / "formats/avif_8bit_srgb.avif").read_bytes()
    ftyp = struct.unpack(">I", avif[:4])[0]
    few, flood = MAX_HEADER_STRUCTURES // 2, 500_000
    started = time.perf_counter()
    for n, verdict in ((few, None), (flood, Reason.DECODE_ERROR)):
        files = [
            _with(tmp_path, "c.jpg", jpeg[:2] + b"\xff\xfe\x00\x02" * n + jpeg[2:]),
            _with(tmp_path, "f.jpg", jpeg[:2] + b"\xff" * n + jpeg[2:]),
            _with(tmp_path, "t.png", png[:33] + _png_chunk(b"tEXt", b"k\0v") * n + png[33:]),
            _with(tmp_path, "b.avif", avif[:ftyp] + struct.pack(">I4s", 8, b"free") * n + avif[ftyp:]),
        ]  # fmt: skip
        for path in files:
            result = probe(path)
            assert (result.reason if isinstance(result, Failure) else None) is verdict, path
    assert time.perf_counter() - started < 30


def test_png_metadata_bomb_is_refused_and_normal_metadata_is_not(tmp_path: Path) -> None:
    """zTXt, iTXt or iCCP data inflating past the limit are a bomb; 1 MiB of text is fine."""
    png = (CORPUS / "formats/png_rgba_alpha.png").read_bytes()
    bomb = zlib.compress(bytes(MAX_INFLATED_METADATA + 1), 9)
    for ctype, head in ((b"zTXt", b"k\0\0"), (b"iTXt", b"k\0\x01\0en\0k\0"), (b"iCCP", b"icc\0\0")):
        path = _with(tmp_path, "bomb.png", png[:33] + _png_chunk(ctype, head + bomb) + png[33:])
        result = probe(path)
        assert _reason(result) is Reason.DECODE_ERROR, ctype
        assert "decompression bomb" in result.message
    text = _png_chunk(b"zTXt", b"k\0\0" + zlib.compress(b"x" * (1 << 20)))
    assert _ok(probe(_with(tmp_path, "ok.png", png[:33] + text + png[33:]))).format is Format.PNG


@pytest.mark.parametrize("rel", ["formats/avif_8bit_srgb.avif", "formats/heic_iphone.heic"])
def test_heif_size_comes_from_ispe_not_from_libvips(tmp_path: Path, rel: str) -> None:
    """ispe 2147483647x2 (4.3 Gpx): libvips reports 1x2 for it; the probe must refuse it."""
    data = bytearray((CORPUS / rel).read_bytes())
    at = data.find(b"ispe")
    while at >= 0:
        struct.pack_into(">II", data, at + 8, 2**31 - 1, 2)
        at = data.find(b"ispe", at + 4)
    assert _reason(probe(_with(tmp_path, Path(rel).name, bytes(data)))) is Reason.TOO_MANY_PIXELS
