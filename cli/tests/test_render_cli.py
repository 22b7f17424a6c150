"""``darkroom render`` on real corpus files: probed as ingest does, RAWs developed first."""

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


def test_render_writes_every_variant_and_reports_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = CORPUS / "jpeg/exif_gps_tahoe.jpg"
    status = main(["render", str(src), "--out", str(tmp_path), "--profile", "bench", "--json"])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    variants = report["files"][0]["variants"]
    assert [v["variant"] for v in variants] == ["thumb", "medium", "large", "large_webp"]
    for v in variants:
        path = Path(v["path"])
        assert path.parent == tmp_path / "exif_gps_tahoe"
        img = pyvips.Image.new_from_file(str(path))
        assert (img.width, img.height) == (v["width"], v["height"])
        assert path.stat().st_size == v["bytes"]
        assert v["seconds"] >= 0
    assert (tmp_path / "exif_gps_tahoe" / "large_webp.webp").exists()
    assert (tmp_path / "exif_gps_tahoe" / "thumb.jpg").exists()


def test_failed_file_gives_exit_1_with_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = CORPUS / "formats/cmyk_no_icc.jpg"
    bad = CORPUS / "bad/truncated.jpg"
    status = main(["render", str(good), str(bad), "--out", str(tmp_path), "--profile", "bench"])
    assert status == 1
    captured = capsys.readouterr()
    assert "truncated.jpg: thumb FAILED truncated" in captured.err
    assert "cmyk_no_icc.jpg: thumb 200x200" in captured.out
    assert not (tmp_path / "truncated").exists()


def test_a_raw_is_developed_and_its_master_rendered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = CORPUS / "raw/cr2_canon_img5952.cr2"
    status = main(["render", str(src), "--out", str(tmp_path), "--profile", "bench", "--json"])
    assert status == 0
    entry = json.loads(capsys.readouterr().out)["files"][0]
    # the raw-provider's defaults: the 1728x1152 embedded preview covers 1620x1080
    assert entry["developed"]["provenance"]["decode_path"] == "embedded-preview"
    master = Path(entry["master"])
    assert master == tmp_path / "cr2_canon_img5952" / "master.jpg"
    tags = shared_exiftool().read_tags(master)
    assert (tags["Make"], tags["Model"], tags["ISO"]) == ("Canon", "Canon EOS 30D", 640)
    assert not [k for k in tags if k.startswith("GPS")]
    sizes = {v["variant"]: (v["width"], v["height"]) for v in entry["variants"]}
    assert sizes["large"] == (1620, 1080)
    assert sizes["thumb"] == (200, 200)


@pytest.mark.parametrize(
    ("rel", "reason"),
    [
        ("bad/jpeg_with_nef_extension.nef", "extension_mismatch"),  # a JPEG named .nef
        ("raw/metadata_only/exifpy_sony_a7iii.arw", "truncated"),  # its first 8 KB
        ("raw/metadata_only/exiftool_DNG.dng", "raw_no_image_data"),  # stripped by ExifTool
        ("raw/metadata_only/exifpy_nikon_z9_dng17.dng", "raw_unsupported"),  # JPEG XL DNG
    ],
)
def test_a_file_the_probe_refuses_is_not_rendered(
    rel: str, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = CORPUS / rel
    status = main(["render", str(src), "--out", str(tmp_path), "--profile", "bench", "--json"])
    assert status == 1
    entry = json.loads(capsys.readouterr().out)["files"][0]
    assert entry["reason"] == reason
    variants = entry["variants"]
    assert [v["variant"] for v in variants] == ["thumb", "medium", "large", "large_webp"]
    assert {v["reason"] for v in variants} == {reason}
    assert len({v["message"] for v in variants}) == 1  # the probe's one sentence
    assert not (tmp_path / src.stem).exists()


def test_missing_file_gives_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["render", str(tmp_path / "absent.cr2"), "--out", str(tmp_path)])
    assert status == 2
    assert "no such file" in capsys.readouterr().err


def test_unknown_profile_gives_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        [
            "render",
            str(CORPUS / "formats/cmyk_no_icc.jpg"),
            "--out",
            str(tmp_path),
            "--profile",
            "nope",
        ]
    )
    assert status == 2
    assert "unknown profile" in capsys.readouterr().err


def test_render_limits_are_the_pipelines_defaults():
    """`darkroom render` refuses what ingest refuses and renders what the variants stage renders."""
    from darkroom_cli.commands.render import MAX_FILE_BYTES, MAX_PIXELS
    from darkroom_ingest.settings import IngestSettings
    from darkroom_variants.settings import VariantsSettings

    ingest = IngestSettings.model_fields
    assert (
        MAX_PIXELS
        == ingest["max_pixels"].default
        == VariantsSettings.model_fields["max_pixels"].default
    )
    assert ingest["max_upload_bytes"].default == MAX_FILE_BYTES
