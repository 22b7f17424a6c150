"""Over 10,000 hostile uploads through the probe and the ingest validator: no crash, hang or bloat.

The cases (:mod:`.cases`) run in :data:`WORKERS` processes (:mod:`.runner`), each with one
persistent ExifTool, through the real path: :func:`~darkroom_common.objects.original_key`,
a filesystem object store, :func:`~darkroom_ingest.validate.validate_upload` (download,
SHA-256, probe, ExifTool) and the Avro wire format. Bounds:

* every case ends with a verdict (accepted, a reason code, or a refused upload name) that
  its expectation allows; an exception is a crash;
* every case takes under :data:`PER_CASE_S` seconds (measured); a worker silent for
  :data:`HANG_S` seconds is killed, the case in flight is a hang, and the worker restarts
  after it; a worker that dies (a signal in a C library) is a crash of its case;
* each worker and each ExifTool stays under :data:`MEMORY_BOUND_MIB` of resident memory.

The figures (cases by family and verdict, slowest case, peak memory, crashes, hangs) are
printed to the terminal whether or not pytest captures output.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

WORKERS = 2
PER_CASE_S = 5.0
HANG_S = 60.0
MEMORY_BOUND_MIB = 1536
MIN_CASES = 10_000
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Worker:
    """One runner process and what it has reported so far."""

    shard: int
    proc: subprocess.Popen[bytes]
    stderr: IO[bytes]
    buffer: bytes = b""
    in_flight: dict[str, Any] | None = None
    last_seen: float = field(default_factory=time.monotonic)


@dataclass
class Run:
    """Everything the workers reported: one dict per finished case, failures by case name."""

    results: list[dict[str, Any]] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    deaths: list[str] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _start(shard: int, start: int, log: Path) -> Worker:
    stderr = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.gauntlet.runner", str(shard), str(WORKERS), str(start)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env={**os.environ, "VIPS_WARNING": "0", "TMPDIR": str(log.parent)},
    )
    return Worker(shard, proc, stderr)


def run_gauntlet(logs: Path) -> Run:
    """Run every case in :data:`WORKERS` processes, restarting a worker after a hang or death."""
    run, sel, began = Run(), selectors.DefaultSelector(), time.monotonic()

    def launch(shard: int, start: int) -> None:
        worker = _start(shard, start, logs / f"worker{shard}.stderr")
        assert worker.proc.stdout is not None
        sel.register(worker.proc.stdout, selectors.EVENT_READ, worker)

    def restart_after(worker: Worker, failures: list[str], why: str) -> None:
        sel.unregister(worker.proc.stdout)
        worker.proc.kill()
        worker.proc.wait()
        worker.stderr.close()
        case = worker.in_flight
        assert case is not None, f"worker {worker.shard} {why} before its first case"
        failures.append(f"{case['name']}: {why}")
        launch(worker.shard, case["start"] + 1)

    for shard in range(WORKERS):
        launch(shard, 0)
    while sel.get_map():
        for key, _ in sel.select(timeout=1.0):
            worker: Worker = key.data
            chunk = os.read(key.fd, 1 << 16)
            worker.last_seen = time.monotonic()
            if not chunk:
                if worker.proc.wait() == 0 and worker.in_flight is None:
                    sel.unregister(key.fileobj)
                    worker.stderr.close()
                else:
                    tail = (logs / f"worker{worker.shard}.stderr").read_bytes()[-400:]
                    why = f"worker died (exit {worker.proc.returncode}): {tail.decode(errors='replace')}"
                    restart_after(worker, run.deaths, why)
                continue
            *lines, worker.buffer = (worker.buffer + chunk).split(b"\n")
            for line in lines:
                record = json.loads(line)
                if "start" in record:
                    worker.in_flight = record
                elif "done" in record:
                    run.summaries.append(record)
                else:
                    run.results.append(record)
                    worker.in_flight = None
        for key in list(sel.get_map().values()):
            worker = key.data
            if worker.in_flight and time.monotonic() - worker.last_seen > HANG_S:
                restart_after(worker, run.hangs, f"no verdict within {HANG_S:.0f} s")
    run.seconds = time.monotonic() - began
    return run


def figures(run: Run) -> str:
    """The run's figures as text: counts by family and verdict, time, memory, failures."""
    results = run.results
    families = Counter(r["name"].split("/", 1)[0] for r in results)
    verdicts = Counter(r["verdict"] for r in results)
    slowest = max(results, key=lambda r: r["seconds"])
    times = sorted(r["seconds"] for r in results)
    worker_mib = max(s["rss_kib"] for s in run.summaries) / 1024
    exiftool_mib = max(s["exiftool_rss_kib"] for s in run.summaries) / 1024
    raw_cuts = [r for r in results if r["name"].startswith(("truncate/cr2", "truncate/kdc"))]
    lines = [
        f"gauntlet: {len(results) + len(run.hangs) + len(run.deaths)} cases in {WORKERS} "
        f"workers, {run.seconds:.1f} s wall",
        "  by family:  " + ", ".join(f"{k} {v}" for k, v in families.items()),
        "  by verdict: " + ", ".join(f"{k} {v}" for k, v in verdicts.most_common()),
        f"  time per case: median {times[len(times) // 2] * 1000:.1f} ms, "
        f"p99 {times[int(len(times) * 0.99)] * 1000:.1f} ms, slowest {slowest['seconds']:.2f} s "
        f"({slowest['name']}); bound {PER_CASE_S:.0f} s",
        f"  peak resident memory: worker {worker_mib:.0f} MiB, ExifTool {exiftool_mib:.0f} MiB "
        f"(bound {MEMORY_BOUND_MIB} MiB); ExifTool starts per worker "
        + "/".join(str(s["exiftool_starts"]) for s in run.summaries),
        f"  crashes {verdicts['crash'] + len(run.deaths)}, hangs {len(run.hangs)}, "
        f"unexpected verdicts {sum(1 for r in results if r['problem'])}",
        f"  truncated CR2/KDC accepted (no image-data extent check for these RAW formats): "
        f"{sum(r['verdict'] == 'accepted' for r in raw_cuts)} of {len(raw_cuts)}",
    ]
    return "\n".join(lines)


@pytest.mark.slow
def test_gauntlet_of_hostile_uploads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_gauntlet(tmp_path)
    report = figures(run)
    with capsys.disabled():
        print("\n" + report)
    assert len(run.results) + len(run.hangs) + len(run.deaths) >= MIN_CASES
    assert not run.hangs, run.hangs
    assert not run.deaths, run.deaths
    crashes = [f"{r['name']}: {r['problem']}" for r in run.results if r["verdict"] == "crash"]
    assert not crashes, "\n".join(crashes[:10])
    problems = [f"{r['name']}: {r['problem']}" for r in run.results if r["problem"]]
    assert not problems, "\n".join(problems[:20])
    slow = [f"{r['name']}: {r['seconds']:.1f} s" for r in run.results if r["seconds"] > PER_CASE_S]
    assert not slow, slow
    assert len(run.summaries) == WORKERS
    for summary in run.summaries:
        assert summary["rss_kib"] < MEMORY_BOUND_MIB * 1024, summary
        assert summary["exiftool_rss_kib"] < MEMORY_BOUND_MIB * 1024, summary
