"""RAW development on the real corpus files, both policies, and every failure path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import pyvips
import rawpy

from darkroom_imaging.outcomes import Failure, Reason
from darkroom_imaging.raw import Developed, _embedded_preview, develop, judge

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
CR2 = CORPUS / "raw/cr2_canon_img5952.cr2"
LG_DNG = CORPUS / "raw/dng_lg-h815_skia_sample_1mp.dng"
KDC = CORPUS / "raw/kdc_kodak_dc50.kdc"
TINY_DNG = CORPUS / "raw/synthetic_oiio_valid-32x32.dng"


def _decoded(dev: Developed) -> np.ndarray:
    image = pyvips.Image.jpegload_buffer(dev.jpeg)
    assert (image.width, image.height, image.bands) == (dev.width, dev.height, 3)
    return image.numpy()


def _assert_plausible(dev: Developed) -> None:
    rgb = _decoded(dev)
    verdict = judge(rgb)
    assert verdict.failure is None, verdict.stats
    assert 40 < verdict.stats["mean_luma"] < 220
    assert verdict.stats["neighbour_correlation"] > 0.85


@pytest.mark.parametrize(
    ("path", "policy", "min_long_edge", "size", "decode_path"),
    [
        (CR2, "develop", None, (3522, 2348), "develop"),
        (CR2, "develop", 1600, (1761, 1174), "develop-half"),
        (CR2, "embedded-preview", 1600, (1728, 1152), "embedded-preview"),
        (CR2, "embedded-preview", None, (1728, 1152), "embedded-preview"),
        (LG_DNG, "develop", None, (600, 338), "develop"),
        # the 256x144 preview is smaller than the 600 px sensor: develop instead
        (LG_DNG, "embedded-preview", None, (600, 338), "develop"),
        (KDC, "develop", None, (768, 512), "develop"),
        (KDC, "embedded-preview", None, (768, 512), "develop"),
        (TINY_DNG, "develop", None, (32, 32), "develop"),
        (TINY_DNG, "embedded-preview", None, (32, 32), "develop"),
    ],
)
def test_develops_plausible_images(
    path: Path, policy: str, min_long_edge: int | None, size: tuple[int, int], decode_path: str
) -> None:
    dev = develop(path, policy=policy, min_long_edge=min_long_edge)  # type: ignore[arg-type]
    assert isinstance(dev, Developed), dev
    assert (dev.width, dev.height) == size
    assert dev.jpeg[:3] == b"\xff\xd8\xff"
    prov = dev.provenance
    assert prov["decode_path"] == decode_path
    assert prov["engine"] == "darkroom-imaging"
    assert prov["libraw"] == ".".join(map(str, rawpy.libraw_version))
    assert prov["libvips"].startswith(f"{pyvips.version(0)}.{pyvips.version(1)}")
    assert prov["seconds"] > 0
    _assert_plausible(dev)


def test_embedded_preview_too_small_for_the_request_falls_back() -> None:
    dev = develop(CR2, policy="embedded-preview", min_long_edge=2000)
    assert isinstance(dev, Developed)
    assert dev.provenance["decode_path"] == "develop"
    assert "too small" in dev.provenance["preview_fallback"]


def test_in_process_matches_isolated() -> None:
    dev = develop(LG_DNG, isolate=False)
    assert isinstance(dev, Developed)
    assert (dev.width, dev.height) == (600, 338)


@pytest.mark.parametrize(
    ("rel", "policy", "reason"),
    [
        # The probe's verdicts, which develop() returns before starting LibRaw.
        ("raw/metadata_only/exiftool_Panasonic.rw2", "develop", Reason.RAW_NO_IMAGE_DATA),
        ("raw/metadata_only/exiftool_DNG.dng", "develop", Reason.RAW_NO_IMAGE_DATA),
        ("raw/metadata_only/exiftool_CanonRaw.cr3", "develop", Reason.RAW_NO_IMAGE_DATA),
        ("raw/metadata_only/exiftool_Nikon.nef", "develop", Reason.RAW_NO_IMAGE_DATA),
        ("raw/metadata_only/exiftool_FujiFilm.raf", "develop", Reason.RAW_NO_IMAGE_DATA),
        ("raw/metadata_only/exiftool_FujiFilm.raf", "embedded-preview", Reason.RAW_NO_IMAGE_DATA),
        # cut to its first 8 KB: a card copy that broke off, not an unknown camera
        ("raw/metadata_only/exifpy_sony_a7iii.arw", "develop", Reason.TRUNCATED),
        ("raw/metadata_only/exifpy_sony_a7iii.arw", "embedded-preview", Reason.TRUNCATED),
        ("raw/metadata_only/exiftool_CanonRaw.cr2", "develop", Reason.RAW_NO_IMAGE_DATA),
        ("raw/metadata_only/exifpy_nikon_z9_dng17.dng", "develop", Reason.RAW_UNSUPPORTED),
        ("raw/metadata_only/exifpy_nikon_z9_dng17.dng", "embedded-preview", Reason.RAW_UNSUPPORTED),
        ("bad/bomb_32000x32000.dng", "develop", Reason.TOO_MANY_PIXELS),
        ("bad/truncated.dng", "develop", Reason.TRUNCATED),
        ("bad/jpeg_with_nef_extension.nef", "embedded-preview", Reason.EXTENSION_MISMATCH),
    ],
)
def test_failures(rel: str, policy: str, reason: Reason) -> None:
    result = develop(CORPUS / rel, policy=policy)  # type: ignore[arg-type]
    assert isinstance(result, Failure), result
    assert result.reason is reason, result.message


@pytest.mark.parametrize(
    ("rel", "policy", "reason"),
    [
        ("raw/metadata_only/exiftool_Panasonic.rw2", "develop", Reason.RAW_GARBAGE),
        # its 8x8 thumbnail must not stand in for the image: the fallback decodes to noise
        ("raw/metadata_only/exiftool_Panasonic.rw2", "embedded-preview", Reason.RAW_GARBAGE),
        ("raw/metadata_only/exiftool_DNG.dng", "develop", Reason.RAW_BLACK),
        ("raw/metadata_only/exiftool_CanonRaw.cr3", "develop", Reason.RAW_NO_IMAGE_DATA),
        ("raw/metadata_only/exiftool_Nikon.nef", "develop", Reason.RAW_NO_IMAGE_DATA),
        ("raw/metadata_only/exiftool_FujiFilm.raf", "develop", Reason.RAW_NO_IMAGE_DATA),
        # a 160x120 thumbnail survives in the stripped RAF; too small to be the image
        ("raw/metadata_only/exiftool_FujiFilm.raf", "embedded-preview", Reason.RAW_NO_IMAGE_DATA),
        ("raw/metadata_only/exifpy_sony_a7iii.arw", "develop", Reason.RAW_NO_IMAGE_DATA),
        ("raw/metadata_only/exiftool_CanonRaw.cr2", "develop", Reason.RAW_UNSUPPORTED),
        ("raw/metadata_only/exifpy_nikon_z9_dng17.dng", "develop", Reason.RAW_UNSUPPORTED),
        ("raw/metadata_only/exifpy_nikon_z9_dng17.dng", "embedded-preview", Reason.RAW_UNSUPPORTED),
        ("bad/bomb_32000x32000.dng", "develop", Reason.TOO_MANY_PIXELS),
        ("bad/truncated.dng", "develop", Reason.RAW_NO_IMAGE_DATA),
        ("bad/jpeg_with_nef_extension.nef", "embedded-preview", Reason.RAW_NO_IMAGE_DATA),
    ],
)
def test_failures_behind_the_probe(rel: str, policy: str, reason: Reason) -> None:
    """LibRaw and the black/noise checks on the files the probe refuses (second line)."""
    result = develop(CORPUS / rel, policy=policy, probe_first=False)  # type: ignore[arg-type]
    assert isinstance(result, Failure), result
    assert result.reason is reason, result.message


def test_timeout() -> None:
    result = develop(CR2, max_seconds=0.05)
    assert isinstance(result, Failure)
    assert result.reason is Reason.RAW_TIMEOUT


def test_memory_cap() -> None:
    result = develop(CR2, max_memory_bytes=400 * 2**20)
    assert isinstance(result, Failure)
    assert result.reason is Reason.TOO_MANY_PIXELS
    assert "memory cap" in result.message


def test_pixel_limit() -> None:
    result = develop(CR2, max_pixels=1_000_000)
    assert isinstance(result, Failure)
    assert result.reason is Reason.TOO_MANY_PIXELS


def test_missing_file_and_bad_policy(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        develop(tmp_path / "absent.cr2")
    with pytest.raises(ValueError, match="policy"):
        develop(CR2, policy="fast")  # type: ignore[arg-type]


def test_libraw_flip_matches_exif_orientation() -> None:
    """LibRaw flip 6 is EXIF 6 (90° clockwise), flip 5 is EXIF 8 (90° counter-clockwise)."""
    with rawpy.imread(str(LG_DNG)) as raw:
        upright = raw.postprocess(user_flip=0).astype(np.int16)
    with rawpy.imread(str(LG_DNG)) as raw:
        cw = raw.postprocess(user_flip=6).astype(np.int16)
    with rawpy.imread(str(LG_DNG)) as raw:
        ccw = raw.postprocess(user_flip=5).astype(np.int16)
    assert np.abs(cw - np.rot90(upright, k=-1)).mean() < 1
    assert np.abs(ccw - np.rot90(upright, k=1)).mean() < 1


def test_embedded_preview_takes_the_raw_orientation() -> None:
    with rawpy.imread(str(CR2)) as raw:
        image, note = _embedded_preview(raw, 6, None)
    assert image is not None, note
    assert (image.width, image.height) == (1152, 1728)


def test_judge_thresholds() -> None:
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, size=(300, 400, 3), dtype=np.uint8)
    assert judge(noise).failure is not None
    assert judge(noise).failure.reason is Reason.RAW_GARBAGE  # type: ignore[union-attr]
    black = np.zeros((300, 400, 3), dtype=np.uint8)
    assert judge(black).failure.reason is Reason.RAW_BLACK  # type: ignore[union-attr]
    ramp = np.tile(np.linspace(0, 255, 400, dtype=np.uint8), (300, 1))
    assert judge(np.dstack([ramp] * 3)).failure is None
    # a flat grey frame with sensor noise is dull, not garbage
    flat = (128 + rng.normal(0, 3, size=(300, 400, 3))).clip(0, 255).astype(np.uint8)
    assert judge(flat).failure is None


@pytest.mark.parametrize(
    ("rel", "reason"),
    [
        ("raw/metadata_only/exiftool_Panasonic.rw2", "raw_garbage"),
        ("raw/metadata_only/exiftool_DNG.dng", "raw_garbage"),
    ],
)
def test_half_size_development_still_refuses_stripped_sensor_data(rel, reason):
    """Half-size binning smooths garbage into plausible pictures; the CFA check does not.

    The probe refuses both files first (``raw_no_image_data``); this is the second line.
    """
    result = develop(
        CORPUS / rel, policy="develop", min_long_edge=1620, isolate=False, probe_first=False
    )
    assert isinstance(result, Failure)
    assert result.reason.value == reason


@pytest.mark.parametrize(
    "rel",
    ["raw/cr2_canon_img5952.cr2", "raw/kdc_kodak_dc50.kdc", "raw/synthetic_oiio_valid-32x32.dng"],
)
def test_real_sensor_data_have_correlated_colour_planes(rel):
    import rawpy

    from darkroom_imaging.raw import CFA_CORRELATION_MIN, cfa_plane_correlation

    with rawpy.imread(str(CORPUS / rel)) as raw:
        assert cfa_plane_correlation(raw) > CFA_CORRELATION_MIN


def test_a_decoder_process_that_dies_is_a_decode_error_in_a_sentence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The child exits without an outcome (killed, crashed): a sentence, the stderr as detail."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'Segmentation fault in libraw' >&2\nexit 139\n")
    fake.chmod(0o755)
    monkeypatch.setattr("sys.executable", str(fake))
    result = develop(CORPUS / "raw" / "synthetic_oiio_valid-32x32.dng", policy="develop")
    assert result == Failure(
        Reason.DECODE_ERROR, "The RAW decoder stopped unexpectedly (exit code 139)."
    )
    assert isinstance(result, Failure)
    assert result.detail == "Segmentation fault in libraw"
