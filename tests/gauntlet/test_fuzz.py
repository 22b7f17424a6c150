"""The atheris fuzz target of the ingest validator runs for a bounded time without a crash."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .cases import CORPUS

FUZZ_SECONDS = 60
ROOT = Path(__file__).resolve().parents[2]
#: Small real files (at most 13 kB) of the formats the probe walks itself, plus two bombs.
SEEDS = (
    "jpeg/exif_olympus_c8080wz.jpg",
    "jpeg/exif_canon_40d_makernote.jpg",
    "bad/looks_like_svg.webp",
    "formats/webp_animated.webp",
    "raw/synthetic_oiio_valid-32x32.dng",
    "raw/metadata_only/exiftool_Nikon.nef",
    "raw/metadata_only/exiftool_CanonRaw.cr2",
    "bad/bomb_decompression_bomb.gif",
    "bad/bomb_17000x17000.avif",
)


def _stat(name: str, output: str) -> str:
    """The value of libFuzzer's final ``stat::<name>`` line, or ``?`` when it printed none."""
    found = re.search(rf"stat::{name}:\s*(\S+)", output)
    return found.group(1) if found else "?"


@pytest.mark.slow
def test_validator_fuzz_target_runs_without_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for rel in SEEDS:
        (seeds / Path(rel).name).symlink_to(CORPUS / rel)
    command = [
        sys.executable,
        "-m",
        "tests.gauntlet.fuzz_validator",
        f"-max_total_time={FUZZ_SECONDS}",
        # libFuzzer reads its peak RSS from getrusage(), which after exec still holds the
        # forking pytest process's high-water mark; the limit allows for that.
        "-rss_limit_mb=4096",
        "-timeout=20",
        "-print_final_stats=1",
        f"-artifact_prefix={tmp_path}/",
        str(seeds),
    ]
    proc = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 240,
        # libFuzzer exits without Python's clean-up: the target's work folder goes in tmp_path.
        env={**os.environ, "VIPS_WARNING": "0", "TMPDIR": str(tmp_path)},
    )
    output = proc.stdout + proc.stderr
    runs = _stat("number_of_executed_units", output)
    with capsys.disabled():
        print(
            f"\nfuzz_validator: {runs} executions in {FUZZ_SECONDS} s "
            f"({_stat('average_exec_per_sec', output)}/s), "
            f"{_stat('new_units_added', output)} new inputs, "
            f"peak RSS {_stat('peak_rss_mb', output)} MB (getrusage: at least pytest's), "
            f"slowest input {_stat('slowest_unit_time_sec', output)} s, "
            f"exit status {proc.returncode}"
        )
    assert proc.returncode == 0, output[-4000:]
    assert not list(tmp_path.glob("crash-*")), output[-4000:]
    assert int(runs) > 10 * len(SEEDS)
