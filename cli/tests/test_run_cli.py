"""``darkroom run``: the main job against the test broker, checked from its JSON and contact sheet."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from darkroom_cli.__main__ import main
from darkroom_cli.commands.run import SAMPLE, collect, default_corpus

CORPUS = default_corpus()


@pytest.mark.kafka
@pytest.mark.slow
def test_run_reports_every_job_and_writes_a_contact_sheet(kafka_bootstrap, tmp_path):
    files = [
        CORPUS / "orientation/Portrait_6.jpg",
        CORPUS / "raw/cr2_canon_img5952.cr2",
        CORPUS / "bad/zero_bytes.jpg",
    ]
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DARKROOM_TOPIC_PREFIX": f"run{uuid.uuid4().hex[:8]}.",
        "DARKROOM_TOPIC_PARTITIONS": "2",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "darkroom_cli",
            "run",
            *map(str, files),
            "--data-dir",
            str(tmp_path),
            "--json",
            "--timeout",
            "240",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    jobs = {Path(j["source_file"]).name: j for j in summary["jobs"]}
    assert jobs["Portrait_6.jpg"]["status"] == "complete"
    assert jobs["cr2_canon_img5952.cr2"]["status"] == "complete"
    assert (jobs["zero_bytes.jpg"]["status"], jobs["zero_bytes.jpg"]["reason_code"]) == (
        "failed",
        "empty_file",
    )
    variants = {v["name"]: v for v in jobs["Portrait_6.jpg"]["variants"]}
    assert (variants["thumb"]["width"], variants["thumb"]["height"]) == (300, 300)
    assert all(v["bytes"] > 0 and v["key"] for v in variants.values())
    sheet = tmp_path / "contact-sheet.html"
    html = sheet.read_text()
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) == 2
    for src in images:
        assert (sheet.parent / src).is_file(), src
    assert "empty_file" in html


def test_run_refuses_a_missing_path(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.jpg"), "--data-dir", str(tmp_path)]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_collect_expands_folders_to_image_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.JPG").write_bytes(b"x")
    (tmp_path / "a" / "notes.txt").write_text("x")
    (tmp_path / "y.cr2").write_bytes(b"x")
    assert collect([tmp_path]) == [tmp_path / "a" / "x.JPG", tmp_path / "y.cr2"]


def test_default_sample_is_in_the_corpus():
    assert all((CORPUS / rel).is_file() for rel in SAMPLE)
