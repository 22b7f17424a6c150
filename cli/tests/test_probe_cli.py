"""The probe, exif and develop commands, through the real CLI entry point."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import pyvips

from darkroom_cli.__main__ import main
from darkroom_imaging.exiftool import shared_exiftool

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[3] / "shared" / "corpus"
)


def _lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_probe_prints_one_line_per_file_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    files = [
        CORPUS / "jpeg/exif_gps_tahoe.jpg",
        CORPUS / "bad/zero_bytes.jpg",
        CORPUS / "bad/heic_with_jpg_extension.jpg",
        CORPUS / "large/giant_20000x14000_gray.jpg",
    ]
    assert main(["probe", *map(str, files)]) == 0
    lines = _lines(capsys.readouterr().out)
    assert [line["path"] for line in lines] == [str(f) for f in files]
    assert lines[0]["ok"] is True
    assert lines[0]["format"] == "jpeg"
    assert lines[0]["width"] == 2048
    assert [line.get("reason") for line in lines[1:]] == [
        "empty_file",
        "extension_mismatch",
        "too_many_pixels",
    ]
    assert all(line["message"] for line in lines[1:])


def test_probe_limit_option(capsys: pytest.CaptureFixture[str]) -> None:
    giant = CORPUS / "large/giant_20000x14000_gray.jpg"
    assert main(["probe", "--max-pixels", "300000000", str(giant)]) == 0
    assert _lines(capsys.readouterr().out)[0]["pixels"] == 280_000_000


def test_probe_missing_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["probe", str(tmp_path / "absent.jpg")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_probe_without_files_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["probe"])
    assert exc.value.code == 2


def test_exif(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exif", str(CORPUS / "raw/metadata_only/exiftool_CanonRaw.cr3")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["make"], data["model"]) == ("Canon", "Canon EOS M50")
    assert data["warnings"] == []


def test_exif_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["exif", str(tmp_path / "absent.jpg")]) == 2


@pytest.mark.parametrize("policy", ["develop", "embedded-preview"])
def test_develop_writes_a_jpeg(
    policy: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "master.jpg"
    raw = CORPUS / "raw/dng_lg-h815_skia_sample_1mp.dng"
    assert main(["develop", str(raw), "--out", str(out), "--policy", policy]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] is True
    assert summary["out"] == str(out)
    assert summary["provenance"]["decode_path"] == "develop"
    image = pyvips.Image.new_from_file(str(out))
    assert (image.width, image.height) == (summary["width"], summary["height"]) == (600, 338)
    tags = shared_exiftool().read_tags(out)
    assert (tags["Make"], tags["Model"], tags["ISO"]) == ("LG Mobile", "LG-H815", 50)
    assert tags["DateTimeOriginal"] == "2015:06:08 12:10:44"


def test_develop_failure_exits_one(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "x.jpg"
    raw = CORPUS / "raw/metadata_only/exiftool_DNG.dng"
    assert main(["develop", str(raw), "--out", str(out)]) == 1
    # the probe's verdict (13,662 bytes for 8 MP), before LibRaw would decode it to black
    assert json.loads(capsys.readouterr().out)["reason"] == "raw_no_image_data"
    assert not out.exists()
