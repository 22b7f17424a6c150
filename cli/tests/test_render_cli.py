"""``darkroom render`` on real corpus files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import pyvips

from darkroom_cli.__main__ import main

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
