"""Capture date by precedence, and honest ``no_exif``, on real files written by ExifTool.

The dated files are derived at test time from a real corpus JPEG (an iPhone 6 photo): every
date is stripped with ExifTool, then exactly one source is written back.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from darkroom_imaging.exiftool import ExifTool, shared_exiftool
from darkroom_imaging.metadata import from_exiftool, read_metadata

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
IPHONE = CORPUS / "jpeg/exif_lens_gps_iphone6.jpg"
BLOCKS = ("EXIF:all", "XMP:all", "IPTC:all")

#: Removes every date an ExifTool read could find: EXIF, XMP, IPTC and GPS.
STRIP_DATES = (
    "-AllDates=",
    "-DateTimeOriginal=",
    "-CreateDate=",
    "-ModifyDate=",
    "-OffsetTime*=",
    "-SubSecTime*=",
    "-XMP:all=",
    "-IPTC:all=",
    "-GPSDateStamp=",
    "-GPSTimeStamp=",
)

#: name -> (strip first?, tags written)
VARIANTS: dict[str, tuple[bool, tuple[str, ...]]] = {
    "iptc_only": (True, ("-IPTC:DateCreated=2021:06:05", "-IPTC:TimeCreated=14:03:02-05:00")),
    "iptc_date_only": (True, ("-IPTC:DateCreated=2021:06:05",)),
    "gps_only": (True, ("-GPSDateStamp=2015:04:10", "-GPSTimeStamp=18:12:23")),
    "xmp_gps_only": (True, ("-XMP-exif:GPSDateTime=2015:04:10 18:12:23Z",)),
    "xmp_only": (True, ("-XMP-photoshop:DateCreated=2019:07:08 10:11:12+02:00",)),
    "create_date_only": (
        True,
        ("-EXIF:CreateDate=2018:01:02 03:04:05", "-EXIF:OffsetTimeDigitized=+09:00"),
    ),
    "xmp_unzoned_iptc_other_second": (
        True,
        (
            "-XMP-photoshop:DateCreated=2019:07:08 10:11:12",
            "-IPTC:DateCreated=2019:07:08",
            "-IPTC:TimeCreated=10:11:13+02:00",
        ),
    ),
    "dto_and_iptc": (False, ("-IPTC:DateCreated=2021:06:05", "-IPTC:TimeCreated=14:03:02-05:00")),
    "no_dates": (True, ()),
    "no_metadata": (False, ("-all=",)),
}


@pytest.fixture(scope="module")
def derived(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The :data:`VARIANTS`, each a copy of the iPhone JPEG rewritten by ExifTool."""
    folder = tmp_path_factory.mktemp("dates")
    files: dict[str, Path] = {}
    with ExifTool(common_args=()) as tool:
        for name, (strip, tags) in VARIANTS.items():
            path = folder / f"{name}.jpg"
            shutil.copyfile(IPHONE, path)
            if strip:
                tool.execute("-overwrite_original", *STRIP_DATES, str(path))
            if tags:
                _, err = tool.execute("-overwrite_original", *tags, str(path))
                assert "error" not in err.lower(), err
            files[name] = path
    return files


@pytest.mark.parametrize(
    ("name", "iso", "source"),
    [
        ("iptc_only", "2021-06-05T14:03:02-05:00", "IPTC:DateCreated"),
        ("iptc_date_only", "2021-06-05", "IPTC:DateCreated"),
        ("gps_only", "2015-04-10T18:12:23Z", "EXIF:GPSDateStamp+GPSTimeStamp"),
        ("xmp_gps_only", "2015-04-10T18:12:23Z", "XMP-exif:GPSDateTime"),
        ("xmp_only", "2019-07-08T10:11:12+02:00", "XMP-photoshop:DateCreated"),
        ("create_date_only", "2018-01-02T03:04:05+09:00", "EXIF:CreateDate"),
        ("xmp_unzoned_iptc_other_second", "2019-07-08T10:11:12", "XMP-photoshop:DateCreated"),
        ("dto_and_iptc", "2015-04-10T20:12:23", "EXIF:DateTimeOriginal"),
    ],
)
def test_capture_date_and_its_source(
    derived: dict[str, Path], name: str, iso: str, source: str
) -> None:
    m = read_metadata(derived[name])
    assert (m.date_time_original, m.date_time_original_source) == (iso, source)
    assert m.make == "Apple"
    assert "no_exif" not in m.warnings
    assert not [w for w in m.warnings if w.startswith("invalid")]


def test_stripped_file_has_no_date_but_still_its_exif(derived: dict[str, Path]) -> None:
    m = read_metadata(derived["no_dates"])
    assert (m.date_time_original, m.date_time_original_source) == (None, None)
    assert m.date_time_original_raw is None
    assert m.model == "iPhone 6"
    assert "no_exif" not in m.warnings


def test_file_stripped_of_all_metadata_says_no_exif(derived: dict[str, Path]) -> None:
    m = read_metadata(derived["no_metadata"])
    assert m.make is None
    assert m.date_time_original is None
    assert "no_exif" in m.warnings


def test_original_exif_date_and_source() -> None:
    m = read_metadata(IPHONE)
    assert m.date_time_original == "2015-04-10T20:12:23"
    assert m.date_time_original_source == "EXIF:DateTimeOriginal"
    pixel = read_metadata(CORPUS / "formats/icc_displayp3_ultrahdr_pixel6pro.jpg")
    assert pixel.date_time_original_source == "EXIF:DateTimeOriginal"
    assert pixel.offset_time_original == "+02:00"


@pytest.mark.parametrize(
    "rel",
    [
        "orientation/Landscape_6.jpg",
        "orientation/Portrait_3.jpg",
        "formats/progressive_960x1280.jpg",
        "formats/grayscale_gray22_icc.jpg",
        "raw/kdc_kodak_dc50.kdc",
        *(f"jpeg/{p.name}" for p in sorted((CORPUS / "jpeg").glob("*.jpg"))),
    ],
)
def test_no_exif_is_not_said_of_files_with_exif(rel: str) -> None:
    found = shared_exiftool().read_tags(CORPUS / rel, BLOCKS, grouped=True)
    assert any(k.split(":")[0] in {"EXIF", "XMP", "IPTC"} for k in found), rel
    assert "no_exif" not in read_metadata(CORPUS / rel).warnings


def test_orientation_only_file_reports_its_orientation_not_no_exif() -> None:
    m = read_metadata(CORPUS / "orientation/Landscape_6.jpg")
    assert m.orientation == 6
    assert m.warnings == []


@pytest.mark.parametrize(
    "rel", ["formats/cmyk_no_icc.jpg", "formats/png_rgba_alpha.png", "formats/webp_lossy.webp"]
)
def test_no_exif_is_said_of_files_without_any(rel: str) -> None:
    found = shared_exiftool().read_tags(CORPUS / rel, BLOCKS, grouped=True)
    assert not [k for k in found if k.split(":")[0] in {"EXIF", "XMP", "IPTC"}]
    assert "no_exif" in read_metadata(CORPUS / rel).warnings


def test_invalid_source_is_skipped_with_a_warning() -> None:
    m = from_exiftool(
        {"Make": "X"},
        {
            "EXIF:DateTimeOriginal": "0000:00:00 00:00:00",
            "EXIF:CreateDate": "2020:01:02 03:04:05",
            "XMP:DateCreated": "2019:01:01",
        },
    )
    assert (m.date_time_original, m.date_time_original_source) == (
        "2020-01-02T03:04:05",
        "EXIF:CreateDate",
    )
    assert m.warnings == ["invalid_date_time_original"]
    xmp = from_exiftool({}, {"XMP:DateCreated": "garbage", "QuickTime:DateTimeOriginal": "x"})
    assert xmp.date_time_original is None
    assert xmp.warnings == [
        "invalid_date: XMP-photoshop:DateCreated",
        "invalid_date: QuickTime:DateTimeOriginal",
    ]
    derived_only = from_exiftool({}, {"Composite:DateTimeOriginal": "2020:01:02 03:04:05"})
    assert derived_only.date_time_original is None  # Composite is built from the tags above
    gps_date_alone = from_exiftool({}, {"EXIF:GPSDateStamp": "2020:01:02"})
    assert gps_date_alone.date_time_original is None


def test_xmp_date_takes_the_zone_of_its_iptc_twin() -> None:
    """XMP-photoshop:DateCreated 15:15:44.31 has no zone; IPTC says 15:15:44-04:00."""
    m = read_metadata(CORPUS / "jpeg/exif_gps_only_thompson_springs.jpg")
    assert m.date_time_original == "2022-01-10T15:15:44.31-04:00"
    assert m.date_time_original_source == "XMP-photoshop:DateCreated"
    assert m.date_time_original_raw == "2022:01:10 15:15:44.31"
