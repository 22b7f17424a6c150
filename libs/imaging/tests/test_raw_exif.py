"""A master carries its RAW's capture EXIF (``copy_capture_metadata``), never GPS or orientation.

Real ExifTool on real RAWs: the corpus CR2, Kodak KDC and LG DNG. The CR2 is copied into
``tmp_path`` and given GPS coordinates and Orientation 6 (rotated) by ExifTool first, so
the test can see both left out. The "master" here is a small JPEG written by libvips with
no metadata, as :func:`darkroom_imaging.raw.develop` writes masters; a master developed
from the CR2 is checked in ``services/raw-provider/tests/test_develop.py``.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import pyvips

from darkroom_imaging.exiftool import ExifTool, shared_exiftool
from darkroom_imaging.raw import CAPTURE_TAGS, copy_capture_metadata

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)


def _master() -> bytes:
    image = (pyvips.Image.xyz(96, 64)[0] * 2).cast("uchar").bandjoin([64, 128])
    image = image.copy(interpretation="srgb")
    return bytes(image.jpegsave_buffer(Q=90, keep=pyvips.ForeignKeep.NONE))


def _tags(tmp_path: Path, jpeg: bytes) -> dict[str, object]:
    path = tmp_path / "out.jpg"
    path.write_bytes(jpeg)
    return shared_exiftool().read_tags(path)


@pytest.fixture(scope="module")
def cr2_with_gps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cr2") / "img5952.cr2"
    shutil.copyfile(CORPUS / "raw/cr2_canon_img5952.cr2", path)
    _out, err = shared_exiftool().execute(
        "-GPSLatitude=46.5",
        "-GPSLatitudeRef=N",
        "-GPSLongitude=7.9",
        "-GPSLongitudeRef=E",
        "-Orientation#=6",
        "-overwrite_original",
        str(path),
    )
    assert "1 image files updated" in err, err
    tags = shared_exiftool().read_tags(path)
    assert tags["GPSLatitude"] == 46.5
    assert tags["Orientation"] == 6
    return path


def test_cr2_master_gets_the_capture_tags_and_no_gps(cr2_with_gps: Path, tmp_path: Path) -> None:
    master = _master()
    tagged = copy_capture_metadata(cr2_with_gps, master)
    tags = _tags(tmp_path, tagged)
    assert tags["Make"] == "Canon"
    assert tags["Model"] == "Canon EOS 30D"
    assert tags["LensModel"] == "EF-S18-55mm f/3.5-5.6"
    assert tags["DateTimeOriginal"] == tags["CreateDate"] == "2009:07:21 13:03:20"
    assert (tags["ExposureTime"], tags["FNumber"], tags["ISO"]) == (0.0025, 22, 640)
    assert tags["FocalLength"] == 22
    assert tags["ColorSpace"] == 1  # sRGB, not ExifTool's default 65535 (uncalibrated)
    assert not [k for k in tags if k.startswith("GPS")], tags
    assert "Orientation" not in tags  # the master's pixels are upright already
    before = pyvips.Image.jpegload_buffer(master).numpy()
    after = pyvips.Image.jpegload_buffer(tagged).numpy()
    assert np.array_equal(before, after)  # metadata only: the JPEG data are untouched


@pytest.mark.parametrize("rel", ["raw/kdc_kodak_dc50.kdc", "raw/dng_lg-h815_skia_sample_1mp.dng"])
def test_every_capture_tag_the_raw_has_is_copied(rel: str, tmp_path: Path) -> None:
    raw = shared_exiftool().read_tags(CORPUS / rel, CAPTURE_TAGS)
    present = {t: raw[t] for t in CAPTURE_TAGS if t in raw}
    assert {"Make", "Model", "ExposureTime", "FNumber", "FocalLength"} <= present.keys()
    tags = _tags(tmp_path, copy_capture_metadata(CORPUS / rel, _master()))
    assert {t: tags.get(t) for t in present} == present
    assert not (set(CAPTURE_TAGS) - present.keys()) & tags.keys()  # nothing invented


def test_kdc_copyright_is_kept(tmp_path: Path) -> None:
    tags = _tags(tmp_path, copy_capture_metadata(CORPUS / "raw/kdc_kodak_dc50.kdc", _master()))
    assert tags["Copyright"] == "Kodak Digital Camera 50"


def test_without_exiftool_the_master_is_kept_and_a_warning_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    master = _master()
    absent = ExifTool(tmp_path / "no-exiftool-here")
    with caplog.at_level(logging.WARNING, logger="darkroom_imaging.raw"):
        out = copy_capture_metadata(CORPUS / "raw/kdc_kodak_dc50.kdc", master, exiftool=absent)
    assert out == master
    assert "without the RAW's EXIF" in caplog.text
