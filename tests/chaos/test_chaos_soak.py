"""The chaos soak in CI: uploads flow while a seeded schedule kills every kind of part.

Runs :mod:`darkroom_dev.chaos` (``make soak`` runs it for 30 minutes) on its own
3-broker cluster in ``tmp_path``: two workers of each stage, at least 15 SIGKILLs
(every stage, a catalog worker whose local state is deleted, a broker), then every
job must end with the right verdict, nothing lost or duplicated, and the catalog
rebuilt from its changelogs must answer as before. The table is printed (the
``figures`` section of the run shows it).

``DARKROOM_SOAK_MINUTES`` (default 5) sets how long uploads and faults go on;
``DARKROOM_SOAK_SEED`` (default 1) the schedule. A failed run keeps its JSON summary
and the workers' logs in ``.darkroom/soak-logs/seed-<n>/``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import pytest

from darkroom_dev.chaos import BROKER, STATE_LOSS, WORKER_KINDS, Config, run, table
from darkroom_dev.local.jars import repo_root

MINUTES = float(os.environ.get("DARKROOM_SOAK_MINUTES", "5"))
SEED = int(os.environ.get("DARKROOM_SOAK_SEED", "1"))

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]


@pytest.mark.timeout(int(MINUTES * 60) + 1200)
def test_chaos_soak_loses_nothing(tmp_path):
    summary = run(
        Config(
            minutes=MINUTES, seed=SEED, workers_per_stage=2, brokers=3, root=tmp_path, drain_s=420
        )
    )
    print(table(summary))
    if not summary.passed:
        keep = repo_root() / ".darkroom" / "soak-logs" / f"seed-{SEED}"
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(tmp_path / "logs", keep)
        (keep / "summary.json").write_text(json.dumps(dataclasses.asdict(summary), indent=2))
        print(f"logs and summary kept in {keep}")
    kills = summary.kills_by_kind()
    assert sum(kills.values()) >= 15, kills
    assert all(kills[kind] >= 1 for kind in (*WORKER_KINDS, STATE_LOSS, BROKER)), kills
    assert summary.uploads >= MINUTES * 60 / 4 * 0.8, summary.uploads
    assert summary.complete > 0, summary.complete
    assert sum(summary.failed.values()) > 0, summary.failed
    assert summary.lost == 0
    assert summary.duplicates == 0
    assert summary.wrong_verdicts == 0
    assert summary.rebuild.get("jobs") == summary.uploads
    assert not summary.problems, summary.problems
