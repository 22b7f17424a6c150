"""Metadata through the real ExifTool (installed by tools/bootstrap/exiftool.sh)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from darkroom_imaging.exiftool import (
    ExifTool,
    ExifToolError,
    ExifToolTimeout,
    find_exiftool,
    shared_exiftool,
)
from darkroom_imaging.metadata import Metadata, exposure_fraction, from_exiftool, read_metadata

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)


def test_exiftool_is_installed() -> None:
    found = find_exiftool()
    assert found is not None, "run tools/bootstrap/exiftool.sh"
    assert found.is_file()


def test_gps_tahoe_exact_values() -> None:
    m = read_metadata(CORPUS / "jpeg/exif_gps_tahoe.jpg")
    assert (m.make, m.model) == ("HTC", "T-Mobile G1")
    assert m.gps_latitude == pytest.approx(39.3067777777778, abs=1e-12)
    assert m.gps_longitude == pytest.approx(-120.335069444444, abs=1e-12)
    assert m.gps_altitude == 0
    assert m.date_time_original == "2009-02-21T08:32:04"
    assert m.date_time_original_raw == "2009:02:21 08:32:04"
    assert (m.image_width, m.image_height, m.orientation) == (2048, 1536, 1)
    assert m.warnings == []


def test_iphone_lens_gps_altitude_exposure() -> None:
    m = read_metadata(CORPUS / "jpeg/exif_lens_gps_iphone6.jpg")
    assert m.lens_model == "iPhone 6 back camera 4.15mm f/2.2"
    assert m.gps_latitude == pytest.approx(40.4469722222222, abs=1e-12)
    assert m.gps_longitude == pytest.approx(-3.72475277777778, abs=1e-12)
    assert m.gps_altitude == pytest.approx(639.6111111)
    assert (m.iso, m.f_number, m.exposure_time) == (32, 2.2, "1/40")
    assert m.exposure_seconds == pytest.approx(0.025)
    assert (m.focal_length, m.focal_length_35mm) == (4.15, 57)
    assert m.flash == 16
    assert m.flash_fired is False


def test_offset_time_and_below_sea_level() -> None:
    pixel = read_metadata(CORPUS / "formats/icc_displayp3_ultrahdr_pixel6pro.jpg")
    assert pixel.date_time_original == "2023-10-06T19:26:23+02:00"
    assert pixel.offset_time_original == "+02:00"
    assert pixel.gps_altitude == pytest.approx(-1.6)
    assert pixel.exposure_time == "1/28571"


def test_heic_and_tiff_metadata() -> None:
    heic = read_metadata(CORPUS / "formats/heic_iphone.heic")
    assert (heic.make, heic.model, heic.iso) == ("Apple", "iPhone 7", 20)
    assert heic.gps_longitude == pytest.approx(-96.071625)
    tiff = read_metadata(CORPUS / "formats/tiff_16bit_rgb_icc.tiff")
    assert (tiff.make, tiff.model, tiff.lens_model) == (
        "FUJIFILM",
        "X-T2",
        "XF18-55mmF2.8-4 R LM OIS",
    )


@pytest.mark.parametrize(
    "rel", ["formats/png_rgba_alpha.png", "formats/webp_lossy.webp", "formats/avif_8bit_srgb.avif"]
)
def test_formats_without_exif_warn(rel: str) -> None:
    m = read_metadata(CORPUS / rel)
    assert m.make is None
    assert "no_exif" in m.warnings
    assert m.image_width
    assert m.image_height


@pytest.mark.parametrize(
    ("rel", "make", "model"),
    [
        ("raw/metadata_only/exiftool_CanonRaw.cr2", "Canon", "Canon EOS 350D DIGITAL"),
        ("raw/metadata_only/exiftool_CanonRaw.cr3", "Canon", "Canon EOS M50"),
        ("raw/metadata_only/exiftool_Nikon.nef", "NIKON CORPORATION", "NIKON D70"),
        ("raw/metadata_only/exiftool_FujiFilm.raf", "FUJIFILM", "FinePix S5Pro"),
        ("raw/metadata_only/exiftool_Panasonic.rw2", "Panasonic", "DMC-LX3"),
        ("raw/metadata_only/exiftool_DNG.dng", "Canon", "Canon EOS 350D DIGITAL"),
        ("raw/metadata_only/exifpy_sony_a7iii.arw", "SONY", "ILCE-7M3"),
        ("raw/metadata_only/exifpy_nikon_z9_dng17.dng", "NIKON CORPORATION", "NIKON Z 9"),
        ("raw/cr2_canon_img5952.cr2", "Canon", "Canon EOS 30D"),
        ("raw/dng_lg-h815_skia_sample_1mp.dng", "LG Mobile", "LG-H815"),
        (
            "raw/kdc_kodak_dc50.kdc",
            "Eastman Kodak Company",
            "Kodak Digital Science DC50 Zoom Camera",
        ),
    ],
)
def test_raw_make_model(rel: str, make: str, model: str) -> None:
    m = read_metadata(CORPUS / rel)
    assert (m.make, m.model) == (make, model)


def test_cr3_details() -> None:
    m = read_metadata(CORPUS / "raw/metadata_only/exiftool_CanonRaw.cr3")
    assert m.lens_model == "EF-M15-45mm f/3.5-6.3 IS STM"
    assert m.date_time_original == "2018-02-21T12:08:56+00:00"
    assert (m.iso, m.f_number, m.exposure_time, m.focal_length) == (12800, 3.5, "1/80", 15)


@pytest.mark.parametrize(
    ("rel", "warning"),
    [
        ("bad/exif_invalid.jpg", "exiftool_warning: Malformed APP1 EXIF segment"),
        (
            "bad/exif_gps_typeerror.jpg",
            "exiftool_warning: Wrong format (string) for IFD0 0x8825 GPSInfo",
        ),
        ("bad/zero_bytes.jpg", "exiftool_error: File is empty"),
        (
            "bad/fuzz_crash_pillow_0c7e0e8e.tif",
            "exiftool_warning: Bad format (4099) for IFD0 entry 12",
        ),
    ],
)
def test_broken_exif_gives_warnings_not_exceptions(rel: str, warning: str) -> None:
    m = read_metadata(CORPUS / rel)
    assert warning in m.warnings
    assert m.gps_latitude is None


def test_truncated_file_still_yields_exif() -> None:
    m = read_metadata(CORPUS / "bad/exif_rich_truncated_ultrahdr_pixel6.jpg")
    assert (m.make, m.model) == ("Google", "Pixel 6")
    assert m.gps_latitude == pytest.approx(30.62765)
    assert m.date_time_original == "2024-05-07T09:33:04+08:00"


def test_to_dict_is_json_ready() -> None:
    import json

    d = read_metadata(CORPUS / "jpeg/exif_gps_tahoe.jpg").to_dict()
    assert json.loads(json.dumps(d))["gps_latitude"] == d["gps_latitude"]
    assert set(d) >= {"make", "model", "warnings", "exposure_time", "exposure_seconds"}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.004, "1/250"), (1 / 15, "1/15"), (0.25, "1/4"), (0.5, "0.5"), (30, "30"), (2.5, "2.5")],
)
def test_exposure_fraction(seconds: float, text: str) -> None:
    assert exposure_fraction(seconds) == text


def test_from_exiftool_conversions() -> None:
    m = from_exiftool(
        {
            "Make": "  X ",
            "DateTimeOriginal": "0000:00:00 00:00:00",
            "GPSLatitude": 12.5,
            "GPSLatitudeRef": "S",
            "GPSLongitude": 200,
            "GPSAltitude": 12,
            "GPSAltitudeRef": 1,
            "Orientation": 0,
            "FNumber": 0,
            "ISO": "n/a",
            "WhiteBalance": 1,
        }
    )
    assert m.make == "X"
    assert m.date_time_original is None
    assert "invalid_date_time_original" in m.warnings
    assert m.gps_latitude is None
    assert "invalid_gps" in m.warnings
    assert m.gps_altitude == -12
    assert m.orientation == 1
    assert "invalid_orientation: 0" in m.warnings
    assert m.f_number is None
    assert m.iso is None
    assert m.white_balance == "manual"
    south = from_exiftool({"GPSLatitude": 12.5, "GPSLatitudeRef": "S", "GPSLongitude": -3.0})
    assert (south.gps_latitude, south.gps_longitude) == (-12.5, -3.0)
    zoned = from_exiftool({"DateTimeOriginal": "2020:01:02 03:04:05.25Z"})
    assert zoned.date_time_original == "2020-01-02T03:04:05.25Z"


def test_unavailable_exiftool_gives_warning(tmp_path: Path) -> None:
    with ExifTool(tmp_path / "no-exiftool") as tool:
        m = read_metadata(CORPUS / "jpeg/exif_gps_tahoe.jpg", exiftool=tool)
    assert m == Metadata(warnings=["exiftool_unavailable"])


def test_env_variable_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DARKROOM_EXIFTOOL", str(tmp_path / "custom"))
    assert find_exiftool() == tmp_path / "custom"


def test_one_process_serves_many_requests_and_restarts_after_death() -> None:
    with ExifTool() as tool:
        first = tool.read_tags(CORPUS / "jpeg/exif_gps_tahoe.jpg", ("Make",))
        pid = tool.pid
        assert first["Make"] == "HTC"
        tool.read_tags(CORPUS / "jpeg/exif_nikon_d70.jpg", ("Make",))
        assert tool.pid == pid
        assert tool.starts == 1
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        again = tool.read_tags(CORPUS / "jpeg/exif_gps_tahoe.jpg", ("Make",))
        assert again["Make"] == "HTC"
        assert tool.starts == 2
        assert tool.pid != pid
    assert tool.pid is None


def test_timeout_kills_and_next_call_recovers() -> None:
    with ExifTool(timeout=0.0001) as tool:
        with pytest.raises(ExifToolTimeout):
            tool.read_tags(CORPUS / "large/canon_5d3_22mp.jpg", ("Make",))
        assert tool.pid is None
        tool.timeout = 30
        assert tool.read_tags(CORPUS / "jpeg/exif_gps_tahoe.jpg", ("Make",))["Make"] == "HTC"
        assert tool.starts == 2
    with ExifTool(timeout=0.0001) as tool:
        assert read_metadata(CORPUS / "jpeg/exif_gps_tahoe.jpg", exiftool=tool).warnings == [
            "exiftool_timeout"
        ]


def test_newline_in_path_is_refused() -> None:
    with ExifTool() as tool, pytest.raises(ValueError, match="line breaks"):
        tool.read_tags(Path("/tmp/a\nb.jpg"))


def test_missing_file_reports_error() -> None:
    m = read_metadata(CORPUS / "no-such-file.jpg")
    assert any(w.startswith("exiftool_error") for w in m.warnings)


def test_each_answer_carries_its_own_stderr_whole() -> None:
    """stderr is read up to the request's -echo4 sentinel: nothing late, nothing carried over."""
    with ExifTool() as tool:
        for _ in range(20):
            _, missing = tool.execute("-json", str(CORPUS / "no-such-file.jpg"))
            assert "File not found" in missing
            assert "{done" not in missing
            out, clean = tool.execute("-json", "-Make", str(CORPUS / "jpeg/exif_gps_tahoe.jpg"))
            assert '"Make": "HTC"' in out
            assert "File not found" not in clean


def test_thread_safe_shared_instance() -> None:
    tool = shared_exiftool()
    assert shared_exiftool() is tool
    files = [CORPUS / "jpeg/exif_gps_tahoe.jpg", CORPUS / "jpeg/exif_nikon_d70.jpg"] * 10
    results: list[str | None] = [None] * len(files)

    def work(i: int) -> None:
        results[i] = read_metadata(files[i]).model

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(files))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["T-Mobile G1", "NIKON D70"] * 10


def test_exiftool_error_type_is_public() -> None:
    assert issubclass(ExifToolTimeout, ExifToolError)


def test_absurd_numbers_are_dropped_not_raised() -> None:
    """A 5e-324 s exposure has no 1/N form; 1e30 in an integer tag does not fit an event."""
    m = from_exiftool({"ExposureTime": 5e-324, "ISO": 1e30, "Flash": -1e30, "Orientation": 1e30})
    assert (m.exposure_time, m.exposure_seconds, m.iso, m.flash, m.orientation) == (None,) * 5
    big = from_exiftool({"ExposureTime": 1e30, "ISO": 2**32 - 1, "Flash": -(2**31)})
    assert (big.exposure_seconds, big.iso, big.flash) == (1e30, 2**32 - 1, -(2**31))
