"""``darkroom run`` twice on one broker, as anyone does after ``make run``: every job ends.

Each repetition is a new deployment (topic prefix) on the session broker. Its first
``darkroom run`` meets empty changelogs; its second meets the state the first left
(the path that stalled and lost uploads under Faust, see docs/stage-runtime.md). Every
run uploads 16 byte-distinct copies of the corpus's 22 MP camera JPEG; every job must
be ``complete`` within the run's timeout, every time. Even repetitions reuse the first
run's data folder, odd ones start the second run in a new one (a worker without its
local state).

``DARKROOM_RUN_TWICE_REPS`` sets the repetitions (CI: 3; ``make soak-runtime``: 20).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .conftest import CORPUS

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

REPS = int(os.environ.get("DARKROOM_RUN_TWICE_REPS", "3"))
PHOTOS = 16
TIMEOUT_S = 240
"""The bound on one run's jobs (seconds); a run on an idle 2-core machine takes about 25 s."""


def photos(folder: Path, run: int) -> Path:
    """16 copies of the 22 MP JPEG, each with distinct trailing bytes (not duplicates)."""
    folder.mkdir(parents=True)
    data = (CORPUS / "large" / "canon_5d3_22mp.jpg").read_bytes()
    for i in range(PHOTOS):
        (folder / f"d_{i + 1}.jpg").write_bytes(data + f"run {run} copy {i}".encode())
    return folder


def darkroom_run(bootstrap: str, prefix: str, folder: Path, data_dir: Path) -> dict:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DARKROOM_", "KAFKA_"))},
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DARKROOM_TOPIC_PREFIX": prefix,
        "DARKROOM_TOPIC_PARTITIONS": "8",
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "darkroom_cli", "run", str(folder), "--json",
         "--data-dir", str(data_dir), "--timeout", str(TIMEOUT_S)],
        env=env, capture_output=True, text=True, timeout=TIMEOUT_S + 120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"darkroom run exited {done.returncode}:\n{done.stderr[-3000:]}"
    summary = json.loads(done.stdout)
    summary["seconds"] = time.monotonic() - started
    return summary


@pytest.mark.parametrize("rep", range(REPS))
def test_darkroom_run_twice_on_one_broker_completes_every_job(kafka_bootstrap, tmp_path, rep):
    prefix = f"twice{uuid.uuid4().hex[:8]}."
    first_dir = tmp_path / "data"
    second_dir = first_dir if rep % 2 == 0 else tmp_path / "data-new"
    figures = []
    for run, data_dir in ((1, first_dir), (2, second_dir)):
        summary = darkroom_run(
            kafka_bootstrap, prefix, photos(tmp_path / f"photos-{run}", run), data_dir
        )
        statuses = {Path(j["source_file"]).name: j["status"] for j in summary["jobs"]}
        assert len(statuses) == PHOTOS
        late = {name: status for name, status in statuses.items() if status != "complete"}
        assert not late, f"run {run} of repetition {rep}: {late}"
        figures.append(f"run {run} {summary['seconds']:.1f} s")
    print(
        f"run twice #{rep} ({'same' if second_dir == first_dir else 'new'} data dir): "
        f"{PHOTOS}/{PHOTOS} complete in both; {', '.join(figures)}"
    )
