"""The chaos soak: a continuous upload stream while a seeded schedule kills every kind of part.

``python -m darkroom_dev.chaos --minutes 30 --seed 7`` (``make soak``) and
``tests/chaos/test_chaos_soak.py`` (CI, 5 minutes) run the same engine, :func:`run`:

1. A Kafka cluster of ``--brokers`` nodes (3: :class:`~darkroom_dev.local.cluster.LocalKafkaCluster`,
   topics with replication factor 3; 1: a :class:`~darkroom_dev.local.kafka.LocalKafka`,
   no broker kills) and a pipeline with ``--workers-per-stage`` processes of each of
   the four stages (ingest, raw-provider, variants, catalog), each worker with its own
   ``DARKROOM_DATA_DIR`` (its *slot* folder), all workers of a stage in one consumer group.
2. For ``--minutes``, uploads (:data:`DECK`: small and medium camera JPEGs mostly, large
   JPEGs and the full-size CR2 now and then, bad files with their expected reason codes)
   go in one every 2–4 s (``--upload-interval``), each to a gallery that does not hold
   the same file yet (ingest fails the same bytes twice in one gallery as ``duplicate``).
3. Meanwhile a schedule drawn from ``--seed`` (:func:`schedule`) SIGKILLs, at
   jittered, evenly spread instants: a worker of each stage, a catalog worker whose
   slot folder (its RocksDB tables) is deleted before it is restarted (``state-loss``),
   and one broker of the cluster (never a second while one is down). A killed worker
   is started again in its slot 1–5 s later, a broker 3–8 s later. A worker that exits
   without being killed is a crash: recorded, listed in the table and restarted (as
   an orchestrator would); with ``fail_on_crash`` (``--fail-on-crash``) it fails the run.
4. Then uploads and faults stop, every part runs again, and every job must end within
   ``--drain-s``. The checks (``tests/faults/checks.py``: :func:`verify_outcome`): each
   job is terminal with the right verdict (complete; or failed with the deck's
   reason code), none is lost, no two different ``cataloged`` events for one
   (job_id, attempt) in the whole topic (an identical repeat, same ``event_id``, is
   counted and shown with its offsets, and fails the run too: the catalog's fence,
   docs/failover.md, keeps it off the topic; ``--allow-repeats`` lists it only), no
   image twice in a gallery, every variant of every gallery answers
   with its catalogued bytes; and here: every catalogued variant's object has the
   catalogued size in the store.
5. **Rebuild**: the catalog API's answers (every gallery, all pages, and every job)
   are read, all catalog workers are stopped, their slot folders deleted, and one
   catalog worker is started on an empty folder: it rebuilds its tables from their
   changelog topics (same consumer group ``<prefix>catalog``, whose committed offsets
   are all at the end, so it produces nothing new). Its answers must equal those before.

**Recovery** of one kill is the time from the kill until every job uploaded before
the killed part was started again has its outcome (its first ``cataloged`` event or
dead letter, by the event's ``occurred_at``; 0 when they all had one by the kill):
how long the pipeline took to get through the work it held when the fault hit and
the work that came in while the part was down. A job on a partition of a killed
worker waits for the consumer group to notice (the session timeout, 10 s) and
rebalance, and a catalog worker restores its tables first; the figure also holds
those jobs' own processing time (the job latency line of the table gives that baseline).

The run prints a table (:func:`table`), writes a JSON summary with ``--out`` and exits
1 on any loss, duplicate, wrong verdict, unacknowledged upload or rebuild difference
(and on a crash with ``--fail-on-crash``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import importlib
import json
import logging
import math
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import httpx

from darkroom_cli.tracker import JobTracker
from darkroom_common.topics import read_to_end
from darkroom_common.uploads import UploadPublisher, upload_file
from darkroom_dev.local.jars import repo_root
from darkroom_dev.local.pipeline import LocalPipeline
from darkroom_dev.local.services import SERVICES, ServiceProcess, free_port
from darkroom_schemas import CatalogedV1, DeadLetterV1, UploadedV1, decode
from darkroom_schemas.topics import STAGES

WORKER_KINDS = tuple(SERVICES)
"""The stages whose workers are killed: ingest, raw-provider, variants, catalog."""

STATE_LOSS = "catalog-state-loss"
"""A catalog worker killed and restarted with its slot folder (its tables) deleted."""

BROKER = "broker"
"""One broker of the cluster killed and restarted on its state."""

KINDS = (*WORKER_KINDS, STATE_LOSS, BROKER)
"""Every fault kind, in table order."""


@dataclass(frozen=True)
class DeckFile:
    """One corpus file of the upload stream.

    Attributes:
        path: relative to the corpus folder.
        weight: relative chance of being drawn.
        reason: the reason code the job must fail with; ``None``: it must complete.
    """

    path: str
    weight: float
    reason: str | None = None


DECK: tuple[DeckFile, ...] = (
    *(
        DeckFile(f"orientation/{s}_{n}.jpg", 1.0)
        for s in ("Landscape", "Portrait")
        for n in (1, 3, 6, 8)
    ),
    *(
        DeckFile(p, 1.0)
        for p in (
            "jpeg/exif_lens_gps_iphone6.jpg",
            "jpeg/exif_lens_gps_nikon_d70s.jpg",
            "jpeg/exif_gps_tahoe.jpg",
            "jpeg/exif_gps_nikon_coolpix_p6000.jpg",
            "jpeg/exif_canon_40d_makernote.jpg",
            "formats/icc_adobergb_canon_eos7d.jpg",
            "formats/progressive_960x1280.jpg",
        )
    ),
    DeckFile("large/canon_5d3_22mp.jpg", 0.4),
    DeckFile("large/sharp_bench_2569067123_aca715a2ee_o.jpg", 0.4),
    DeckFile("raw/cr2_canon_img5952.cr2", 0.5),
    # Bad files: the reason codes the corpus run of tests/test_pipeline_e2e.py asserts.
    DeckFile("bad/zero_bytes.jpg", 0.4, "empty_file"),
    DeckFile("bad/truncated.jpg", 0.4, "truncated"),
    DeckFile("bad/html_renamed.jpg", 0.4, "unsupported_format"),
    DeckFile("bad/corrupt_png_broken_data_stream.png", 0.4, "decode_error"),
    DeckFile("bad/bomb_decompression_bomb.gif", 0.4, "too_many_pixels"),
    DeckFile("bad/jpeg_with_nef_extension.nef", 0.4, "extension_mismatch"),
    DeckFile("bad/truncated.dng", 0.4, "truncated"),
    DeckFile("raw/metadata_only/exiftool_Nikon.nef", 0.4, "raw_no_image_data"),
)
"""What the upload stream draws from: 15 good files (about 85 % of draws, the CR2
about 3 %), 8 bad ones (about 15 %) with the reason code each must fail with."""


@dataclass(frozen=True)
class Fault:
    """One scheduled fault.

    Attributes:
        at_s: seconds after the upload stream started.
        kind: one of :data:`KINDS`.
        target: which worker slot (0…workers-1) or broker (0…brokers-1); a worker
            slot that is down at that moment is swapped for a running one.
        restart_after_s: seconds from the kill to the restart.
    """

    at_s: float
    kind: str
    target: int
    restart_after_s: float


def schedule(
    seed: int,
    duration_s: float,
    *,
    workers: int,
    brokers: int,
    warmup_s: float = 15.0,
    mean_gap_s: float = 13.0,
    min_kills: int = 15,
    broker_gap_s: float = 75.0,
) -> list[Fault]:
    """Draw the fault schedule of one run (the same for the same arguments).

    Kills are spread evenly over ``[warmup_s, duration_s - 10]`` with a jitter inside
    each slice: ``max(min_kills, window / mean_gap_s)`` of them. Every kind of
    :data:`KINDS` comes at least once (brokers only with ``brokers > 1``); broker kills
    take one slice every ``broker_gap_s`` seconds so the cluster has caught up
    before the next; the other slices get a random worker kind (state loss included).

    Raises:
        ValueError: the window is too short for ``min_kills`` slices of 5 s or more.
    """
    rng = random.Random(f"{seed}:faults")
    window = duration_s - 10 - warmup_s
    n = max(min_kills, int(window / mean_gap_s))
    if window / n < 5:
        raise ValueError(f"{duration_s:g} s is too short for {n} kills at least 5 s apart")
    slice_s = window / n
    kinds: list[str | None] = [None] * n
    if brokers > 1:
        per = max(1, round(broker_gap_s / slice_s))
        for i in range(rng.randrange(per) if per < n else 0, n, per):
            kinds[i] = BROKER
    free = [i for i, k in enumerate(kinds) if k is None]
    rng.shuffle(free)
    required = [*WORKER_KINDS, STATE_LOSS]
    for i, kind in zip(free, required, strict=False):
        kinds[i] = kind
    for i in free[len(required) :]:
        kinds[i] = rng.choice(required)
    faults = []
    for i, drawn in enumerate(kinds):
        assert drawn is not None
        kind = drawn
        at = warmup_s + (i + rng.uniform(0.15, 0.85)) * slice_s
        if kind == BROKER:
            faults.append(
                Fault(round(at, 2), kind, rng.randrange(brokers), round(rng.uniform(3, 8), 2))
            )
        else:
            faults.append(
                Fault(round(at, 2), kind, rng.randrange(workers), round(rng.uniform(1, 5), 2))
            )
    return faults


class Brokers(Protocol):
    """What the soak needs of a broker set: :class:`LocalKafkaCluster` or :class:`_OneBroker`."""

    @property
    def bootstrap(self) -> str:
        """The ``bootstrap.servers`` value."""

    def kill(self, node: int) -> None:
        """SIGKILL broker ``node``."""

    def restart(self, node: int, timeout_s: float = 60.0) -> None:
        """Start broker ``node`` again on its state and wait until it answers."""

    def alive(self, node: int) -> bool:
        """Whether broker ``node``'s process runs."""

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop every broker."""


class _OneBroker:
    """A single :class:`LocalKafka` behind the :class:`Brokers` shape (its kills are never scheduled)."""

    def __init__(self, state_dir: Path) -> None:
        from darkroom_dev.local.kafka import LocalKafka

        port = free_port()
        self.kafka = LocalKafka(state_dir, port, free_port())

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    def start(self, timeout_s: float = 120.0) -> str:
        return self.kafka.start(timeout_s)

    def kill(self, node: int) -> None:
        raise RuntimeError("a single broker is not killed by the soak")

    def restart(self, node: int, timeout_s: float = 60.0) -> None:
        self.kafka.start(timeout_s)

    def alive(self, node: int) -> bool:
        return self.kafka.pid() is not None

    def stop(self, timeout_s: float = 30.0) -> bool:
        return self.kafka.stop(timeout_s)


@dataclass
class Config:
    """One soak run's settings (the command's options; see :func:`main`).

    Attributes:
        minutes: how long uploads and faults go on.
        seed: draws the fault schedule, the victims' slots and the uploads.
        workers_per_stage: processes of each stage.
        brokers: cluster size (1: no broker kills).
        root: folder for the cluster, the store, the workers' slots and the logs.
        upload_interval_s: the gap between two uploads is drawn uniformly from this range.
        drain_s: bound on the wait for every job to end once faults stop.
        partitions: partitions of each topic.
        min_kills: the schedule's least number of kills.
        fail_on_crash: a worker exiting by itself fails the run (else it is listed only).
        fail_on_repeat: an identical repeated ``cataloged`` counts as a duplicate
            (default; ``--allow-repeats`` turns it off).
        log: where progress lines go (``print`` by default).
    """

    minutes: float = 5.0
    seed: int = 1
    workers_per_stage: int = 2
    brokers: int = 3
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="darkroom-soak-")))
    upload_interval_s: tuple[float, float] = (2.0, 4.0)
    drain_s: float = 300.0
    partitions: int = 4
    min_kills: int = 15
    fail_on_crash: bool = False
    fail_on_repeat: bool = True
    log: Callable[[str], None] = print


@dataclass
class KillRecord:
    """One fault carried out: ``kind``, its target, when it was killed and started again
    (wall clock, ``time.time()``), and its recovery (see the module docstring)."""

    kind: str
    target: str
    at: float
    restarted_at: float | None = None
    recovery_s: float | None = None


@dataclass
class Summary:
    """Everything one soak run measured and found (the JSON of ``--out``).

    Attributes:
        seed, minutes, workers_per_stage, brokers: the run's settings.
        uploads: jobs started; ``upload_errors``: uploads whose event was not acknowledged.
        complete, failed (reason → count), lost, duplicates, wrong_verdicts: the
            outcome (see :func:`verify_outcome`); ``duplicates`` leaves out ``repeats``
            unless ``Config.fail_on_repeat``.
        repeats: extra ``cataloged`` events identical to the attempt's first (same
            ``event_id``, same content): the at-least-once repeat docs/failover.md
            allows ("consumers deduplicate on event_id"); a different second event
            for one attempt is a duplicate.
        kills: every fault carried out, with its recovery.
        skipped: faults of the schedule not carried out (e.g. a broker still catching up).
        crashes: workers that exited without being killed (a finding; a failure only
            with ``Config.fail_on_crash``).
        latency_p50_s, latency_p99_s: upload → outcome per job.
        rebuild: galleries and jobs compared after the rebuild, and the differences.
        problems: every violated check in words; empty when the run passed.
        evidence: for each duplicate ``cataloged``, where each copy is (partition,
            offset, append time, ``occurred_at``) and the faults after the job's upload.
        elapsed_s: wall time of the whole run.
    """

    seed: int
    minutes: float
    workers_per_stage: int
    brokers: int
    uploads: int = 0
    upload_errors: int = 0
    complete: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    duplicates: int = 0
    repeats: int = 0
    wrong_verdicts: int = 0
    kills: list[KillRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    latency_p50_s: float | None = None
    latency_p99_s: float | None = None
    rebuild: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def passed(self) -> bool:
        """Whether nothing was lost, duplicated, wrongly judged or rebuilt differently."""
        return not self.problems

    def kills_by_kind(self) -> dict[str, int]:
        """Kind → faults carried out, every kind of :data:`KINDS` listed."""
        counts = Counter(k.kind for k in self.kills)
        return {kind: counts[kind] for kind in KINDS}


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0 < q ≤ 100) of ``values``; ``None`` for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def table(summary: Summary) -> str:
    """The soak's result as text: kills and recovery by kind, then the outcome."""
    lines = [
        f"chaos soak: seed {summary.seed}, {summary.minutes:g} min of uploads and faults, "
        f"{summary.workers_per_stage} workers per stage, {summary.brokers} broker(s), "
        f"{summary.elapsed_s / 60:.1f} min in all",
        f"{'fault kind':<20} {'kills':>5} {'recovery max':>13} {'p99':>8} {'p50':>8}",
    ]
    for kind in (*KINDS, "all"):
        rows = [k for k in summary.kills if kind in ("all", k.kind)]
        rec = [k.recovery_s for k in rows if k.recovery_s is not None]
        lines.append(
            f"{kind:<20} {len(rows):>5} {_s(max(rec, default=None)):>13} "
            f"{_s(percentile(rec, 99)):>8} {_s(percentile(rec, 50)):>8}"
        )
    failed = ", ".join(f"{r} ×{n}" for r, n in sorted(summary.failed.items())) or "0"
    lines += [
        "recovery: from a kill until every job uploaded before the part ran again has its outcome",
        f"uploads {summary.uploads} (not acknowledged: {summary.upload_errors}); "
        f"complete {summary.complete}; failed {sum(summary.failed.values())} ({failed})",
        f"lost {summary.lost}; duplicates {summary.duplicates}; identical cataloged repeats "
        f"{summary.repeats}; wrong verdicts "
        f"{summary.wrong_verdicts}; crashes {len(summary.crashes)}; skipped faults {len(summary.skipped)}",
        f"job latency upload → outcome: p50 {_s(summary.latency_p50_s)}, p99 {_s(summary.latency_p99_s)}",
    ]
    if summary.rebuild:
        r = summary.rebuild
        lines.append(
            f"catalog rebuilt from its changelogs: {r.get('galleries', 0)} galleries, "
            f"{r.get('jobs', 0)} jobs, {len(r.get('differences', []))} differences "
            f"(restored in {_s(r.get('ready_s'))})"
        )
    lines += [f"  crash: {c}" for c in summary.crashes]
    lines += [f"  evidence: {e}" for e in summary.evidence]
    lines.append("PASSED" if summary.passed else f"FAILED: {len(summary.problems)} problem(s)")
    lines += [f"  - {p}" for p in summary.problems[:40]]
    return "\n".join(lines)


def load_checks() -> ModuleType:
    """Import ``tests/faults/checks.py`` of the workspace (the fault tests' outcome checks).

    The dev tools run from a checkout, so the repository's ``tests`` folder is
    imported as a namespace package from :func:`repo_root`.
    """
    root = str(repo_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("tests.faults.checks")


def corpus_dir() -> Path:
    """The test-image corpus: ``$DARKROOM_CORPUS`` or ``<repo>/../shared/corpus``."""
    return Path(os.environ.get("DARKROOM_CORPUS") or repo_root().parent / "shared" / "corpus")


def check_deck(corpus: Path) -> None:
    """Make sure every :data:`DECK` file is in the corpus and its ``MANIFEST.csv``.

    Raises:
        FileNotFoundError: a file or its manifest row is missing.
    """
    with (corpus / "MANIFEST.csv").open(newline="") as f:
        listed = {row["path"] for row in csv.DictReader(f)}
    for d in DECK:
        if d.path not in listed or not (corpus / d.path).is_file():
            raise FileNotFoundError(f"{corpus / d.path} is not in the corpus or its MANIFEST.csv")


class Soak:
    """One run of the soak (see the module docstring); :meth:`run` does it all."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.checks = load_checks()
        self.corpus = corpus_dir()
        check_deck(self.corpus)
        self.root = config.root.absolute()
        self.summary = Summary(
            config.seed, config.minutes, config.workers_per_stage, config.brokers
        )
        self.cluster: Brokers | None = None
        self.pipeline: LocalPipeline | None = None
        self.slots: dict[tuple[str, int], ServiceProcess] = {}
        self.killed: set[int] = set()  # pids we killed on purpose
        self.down: set[tuple[str, int]] = set()
        self.brokers_down: set[int] = set()
        self.uploads: list[tuple[UploadedV1, float, DeckFile]] = []
        self.restarts: list[asyncio.Task[None]] = []
        self.stop_faults = asyncio.Event()

    # ---- parts ---------------------------------------------------------------------

    def slot_dir(self, stage: str, i: int) -> Path:
        """The ``DARKROOM_DATA_DIR`` of worker ``i`` of ``stage``."""
        return self.root / "slots" / f"{stage}-{i}"

    def start_worker(self, stage: str, i: int) -> ServiceProcess:
        """Start worker ``i`` of ``stage`` in its slot folder."""
        assert self.pipeline is not None
        sp = self.pipeline.services.start(
            stage, extra_env={"DARKROOM_DATA_DIR": str(self.slot_dir(stage, i))}
        )
        self.slots[stage, i] = sp
        self.down.discard((stage, i))
        return sp

    def start_cluster(self) -> str:
        """Start the brokers; return the bootstrap."""
        state = self.root / "kafka"
        if self.config.brokers > 1:
            from darkroom_dev.local.cluster import LocalKafkaCluster

            cluster = LocalKafkaCluster(state, brokers=self.config.brokers)
            self.cluster = cluster
            return cluster.start(timeout_s=180)
        one = _OneBroker(state)
        self.cluster = one
        return one.start(120)

    def start_pipeline(self, bootstrap: str) -> LocalPipeline:
        """Create the topics (replication factor = brokers, at most 3) and start every worker."""
        checks = self.checks
        rf = min(3, self.config.brokers)
        env = {**checks.API_ENV, "DARKROOM_RETRY_BASE_DELAY_S": "0.05"}
        prefix = f"soak{uuid.uuid4().hex[:6]}."
        pipeline = LocalPipeline(
            bootstrap, prefix, self.root, self.config.partitions, env, replication_factor=rf
        )
        self.pipeline = pipeline
        asyncio.run(pipeline.create_topics())
        for stage in WORKER_KINDS:
            for i in range(self.config.workers_per_stage):
                self.start_worker(stage, i)
        deadline = time.monotonic() + 180
        for sp in list(self.slots.values()):
            sp.wait_ok(f"http://127.0.0.1:{sp.web_port}/readyz", deadline)
        return pipeline

    # ---- the stream and the faults ------------------------------------------------------

    async def upload_stream(self, until: float) -> None:
        """Upload one deck file every 2–4 s until ``until`` (monotonic), each to a gallery without it."""
        assert self.pipeline is not None
        pipeline = self.pipeline
        rng = random.Random(f"{self.config.seed}:uploads")
        weights = [d.weight for d in DECK]
        gallery_n, used = 0, set[str]()
        lo, hi = self.config.upload_interval_s
        async with UploadPublisher(pipeline.bootstrap, topic_prefix=pipeline.prefix) as publisher:
            while time.monotonic() < until:
                d = rng.choices(DECK, weights)[0]
                if d.path in used:
                    gallery_n, used = gallery_n + 1, set()
                used.add(d.path)
                gallery = f"soak-{self.config.seed}-{gallery_n}"
                try:
                    u = await upload_file(
                        pipeline.store, publisher, self.corpus / d.path, gallery_id=gallery
                    )
                except Exception as exc:  # counted and reported; the stream goes on
                    self.summary.upload_errors += 1
                    self.config.log(f"upload of {d.path} not acknowledged: {exc!r}")
                else:
                    self.uploads.append((u, time.time(), d))
                await asyncio.sleep(rng.uniform(lo, hi))
        await pipeline.store.close()

    async def faults(self, plan: list[Fault], started: float) -> None:
        """Carry out ``plan`` (seconds after ``started``, monotonic) until :attr:`stop_faults`."""
        for f in plan:
            delay = started + f.at_s - time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_faults.wait(), max(0.0, delay))
            if self.stop_faults.is_set():
                return
            if f.kind == BROKER:
                await self.kill_broker(f)
            else:
                self.kill_worker(f)

    def kill_worker(self, f: Fault) -> None:
        """SIGKILL a worker of ``f``'s stage (its slot, or a running one); restart it later."""
        assert self.pipeline is not None
        stage = "catalog" if f.kind == STATE_LOSS else f.kind
        slots = [i for i in range(self.config.workers_per_stage) if (stage, i) not in self.down]
        if not slots:
            self.summary.skipped.append(f"{f.kind} at {f.at_s:.0f} s: every worker is down")
            return
        i = f.target if f.target in slots else slots[0]
        sp = self.slots[stage, i]
        self.killed.add(sp.process.pid)
        self.down.add((stage, i))
        now = time.time()
        self.pipeline.services.kill(sp)
        if f.kind == STATE_LOSS:
            shutil.rmtree(self.slot_dir(stage, i), ignore_errors=True)
        record = KillRecord(f.kind, f"{stage}-{i}", now)
        self.summary.kills.append(record)
        self.config.log(
            f"[{f.at_s:6.1f} s] kill -9 {stage}-{i} (pid {sp.process.pid})"
            + (", slot folder deleted" if f.kind == STATE_LOSS else "")
            + f"; restart in {f.restart_after_s:.1f} s"
        )

        async def restart() -> None:
            await asyncio.sleep(f.restart_after_s)
            record.restarted_at = time.time()
            self.start_worker(stage, i)

        self.restarts.append(asyncio.create_task(restart()))

    async def kill_broker(self, f: Fault) -> None:
        """SIGKILL broker ``f.target`` if every broker runs; restart it a few seconds later."""
        cluster = self.cluster
        assert cluster is not None
        if self.brokers_down or not all(cluster.alive(n) for n in range(self.config.brokers)):
            self.summary.skipped.append(f"broker at {f.at_s:.0f} s: another broker is down")
            return
        now = time.time()
        await asyncio.to_thread(cluster.kill, f.target)
        self.brokers_down.add(f.target)
        record = KillRecord(BROKER, f"broker-{f.target}", now)
        self.summary.kills.append(record)
        self.config.log(
            f"[{f.at_s:6.1f} s] kill -9 broker {f.target}; restart in {f.restart_after_s:.1f} s"
        )

        async def restart() -> None:
            await asyncio.sleep(f.restart_after_s)
            record.restarted_at = time.time()
            await asyncio.to_thread(cluster.restart, f.target, 120.0)
            self.brokers_down.discard(f.target)

        self.restarts.append(asyncio.create_task(restart()))

    async def watchdog(self) -> None:
        """Every second: a worker that exited without being killed is a crash; restart it."""
        while True:
            for (stage, i), sp in list(self.slots.items()):
                if sp.process.poll() is not None and sp.process.pid not in self.killed:
                    self.killed.add(sp.process.pid)
                    self.summary.crashes.append(
                        f"{stage}-{i} exited by itself ({sp.process.returncode}): {sp.log_path}"
                    )
                    self.config.log(f"CRASH {stage}-{i} ({sp.process.returncode}):\n{sp.tail(15)}")
                    self.start_worker(stage, i)
            await asyncio.sleep(1)

    # ---- the end ---------------------------------------------------------------------

    async def everything_up(self) -> None:
        """Wait for pending restarts; start anything still down; wait until every worker is ready."""
        await asyncio.gather(*self.restarts)
        cluster = self.cluster
        assert cluster is not None
        for n in range(self.config.brokers):
            if not cluster.alive(n):
                await asyncio.to_thread(cluster.restart, n, 120.0)
        deadline = time.monotonic() + 180
        for sp in list(self.slots.values()):
            await asyncio.to_thread(sp.wait_ok, f"http://127.0.0.1:{sp.web_port}/readyz", deadline)

    async def soak(self) -> None:
        """The stream, the faults, the drain and the checks (the cluster and workers run)."""
        cfg, pipeline = self.config, self.pipeline
        assert pipeline is not None
        duration = cfg.minutes * 60
        plan = schedule(
            cfg.seed,
            duration,
            workers=cfg.workers_per_stage,
            brokers=cfg.brokers,
            min_kills=cfg.min_kills,
        )
        cfg.log(
            f"schedule (seed {cfg.seed}): {len(plan)} faults "
            + ", ".join(f"{k} ×{n}" for k, n in Counter(f.kind for f in plan).items())
        )
        tracker = JobTracker(pipeline.bootstrap, topic_prefix=pipeline.prefix)
        await tracker.start()
        watchdog = asyncio.create_task(self.watchdog())
        try:
            started = time.monotonic()
            faults = asyncio.create_task(self.faults(plan, started))
            await self.upload_stream(started + duration)
            self.stop_faults.set()
            await faults
            cfg.log(f"uploads and faults over: {len(self.uploads)} uploads; waiting for every job")
            await self.everything_up()
            ids = [u.job_id for u, _, _ in self.uploads]
            drain_started = time.monotonic()
            ends = await tracker.wait(ids, timeout_s=cfg.drain_s)
            cfg.log(
                f"{len(ends)}/{len(ids)} jobs ended {time.monotonic() - drain_started:.1f} s after the faults"
            )
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            await tracker.stop()
        await self.verify(ends)
        await self.rebuild()

    async def verify(self, ends: Mapping[str, Any]) -> None:
        """Outcome checks, variant sizes, recovery and latency figures into :attr:`summary`."""
        pipeline, checks, s = self.pipeline, self.checks, self.summary
        assert pipeline is not None
        uploads = [u for u, _, _ in self.uploads]
        expect = {u.job_id: d.reason for u, _, d in self.uploads if d.reason}
        report = await checks.verify_outcome(
            pipeline,
            uploads,
            ends,
            fault="chaos soak",
            recovery_s=None,
            expect_failed=expect,
            gallery_timeout_s=60,
        )
        s.uploads, s.complete, s.failed = report.uploads, report.complete, report.failed
        s.lost = report.lost
        s.wrong_verdicts = sum(
            "expected" in p or "failed without a reason" in p for p in report.problems
        )
        # The whole cataloged topic, with where each event is: evidence for duplicates.
        cataloged: list[CatalogedV1] = []
        copies: dict[tuple[str, int], list[tuple[CatalogedV1, str]]] = {}
        async for r in read_to_end(pipeline.bootstrap, [f"{pipeline.prefix}cataloged"]):
            c = decode(r.value or b"")
            if isinstance(c, CatalogedV1):
                cataloged.append(c)
                copies.setdefault((c.job_id, c.attempts), []).append(
                    (
                        c,
                        f"partition {r.partition} offset {r.offset} appended "
                        f"{datetime.fromtimestamp(r.timestamp / 1000, UTC):%H:%M:%S.%f} "
                        f"occurred_at {c.occurred_at:%H:%M:%S.%f} status {c.status} "
                        f"event_id {c.event_id}",
                    )
                )
        uploaded_at = {u.job_id: t for u, t, _ in self.uploads}
        repeated: set[str] = set()
        for (job_id, attempt), found in copies.items():
            if len(found) < 2:
                continue
            identical = all(c.model_dump() == found[0][0].model_dump() for c, _ in found)
            if identical:
                s.repeats += len(found) - 1
                if not self.config.fail_on_repeat:
                    repeated.add(f"job {job_id} attempt {attempt} cataloged {len(found)} times")
            since = uploaded_at.get(job_id, 0.0) - 5
            near = [
                f"{k.kind} {k.target} at {datetime.fromtimestamp(k.at, UTC):%H:%M:%S.%f}"
                for k in s.kills
                if k.at > since
            ][:6]
            s.evidence.append(
                f"job {job_id} attempt {attempt} cataloged {len(found)} times"
                + (" (identical: the same event again)" if identical else " (DIFFERENT events)")
                + ": "
                + "; ".join(where for _, where in found)
                + f"; faults after its upload: {', '.join(near) or 'none'}"
            )
        s.duplicates = report.duplicates - (s.repeats if not self.config.fail_on_repeat else 0)
        s.problems += [p for p in report.problems if p not in repeated]
        # Every catalogued variant has its catalogued size in the store.
        last = {c.job_id: c for c in cataloged}
        for c in last.values():
            for v in c.variants if c.status == "complete" else ():
                try:
                    size = (await pipeline.store.head(v.object_key)).size
                except Exception as exc:  # any failure is a finding
                    s.problems.append(f"variant {v.object_key} of job {c.job_id}: {exc!r}")
                    continue
                if size != v.bytes:
                    s.problems.append(
                        f"variant {v.object_key}: {size} bytes stored, {v.bytes} catalogued"
                    )
        await pipeline.store.close()
        # Recovery and latency from the outcome events' occurred_at.
        ended: dict[str, float] = {}
        outcomes: list[CatalogedV1 | DeadLetterV1] = list(cataloged)
        for stage in STAGES:
            dlq = await checks.read_topic(
                pipeline.bootstrap, f"{pipeline.prefix}{stage.dead_letter}"
            )
            outcomes += [d for d in dlq if isinstance(d, DeadLetterV1)]
        for e in outcomes:
            if e.job_id and e.job_id not in ended:
                ended[e.job_id] = e.occurred_at.timestamp()
            elif e.job_id:
                ended[e.job_id] = min(ended[e.job_id], e.occurred_at.timestamp())
        latencies = [ended[u.job_id] - t for u, t, _ in self.uploads if u.job_id in ended]
        s.latency_p50_s, s.latency_p99_s = percentile(latencies, 50), percentile(latencies, 99)
        for k in s.kills:
            until = k.restarted_at or k.at
            before = [ended.get(u.job_id) for u, t, _ in self.uploads if t < until]
            if all(e is not None for e in before):
                k.recovery_s = max([0.0, *(e - k.at for e in before if e is not None)])
        if s.upload_errors:
            s.problems.append(f"{s.upload_errors} upload(s) not acknowledged by the cluster")
        if self.config.fail_on_crash:
            s.problems += [f"crash: {c}" for c in s.crashes]

    async def api_answers(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Every gallery's images (all pages) and every job, as the catalog API answers them."""
        assert self.pipeline is not None
        checks = self.checks
        key = checks.auth(checks.READ_KEY)
        galleries: dict[str, Any] = {}
        jobs: dict[str, Any] = {}
        async with httpx.AsyncClient(
            base_url=checks.catalog_url(self.pipeline), timeout=30
        ) as http:
            for g in sorted({u.gallery_id for u, _, _ in self.uploads}):
                items = await checks.gallery_items(http, g, key)
                galleries[g] = sorted(items, key=lambda i: str(i["image_id"]))
            for u, _, _ in self.uploads:
                r = await http.get(f"/v1/jobs/{u.job_id}", headers=key)
                jobs[u.job_id] = {"http": r.status_code, "body": r.json()}
        return galleries, jobs

    async def rebuild(self) -> None:
        """Compare the catalog API before and after a rebuild of its tables from the changelogs."""
        pipeline, s = self.pipeline, self.summary
        assert pipeline is not None
        before = await self.api_answers()
        catalogs = [self.slots["catalog", i] for i in range(self.config.workers_per_stage)]
        for sp in catalogs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(sp.process.pid, signal.SIGTERM)
        for sp in catalogs:
            await asyncio.to_thread(sp.process.wait, 60)
            self.killed.add(sp.process.pid)
        for i in range(self.config.workers_per_stage):
            shutil.rmtree(self.slot_dir("catalog", i), ignore_errors=True)
        t0 = time.monotonic()
        fresh = self.start_worker("catalog", 0)
        await asyncio.to_thread(
            fresh.wait_ok, f"http://127.0.0.1:{fresh.web_port}/readyz", time.monotonic() + 180
        )
        ready_s = time.monotonic() - t0
        after = await self.api_answers()
        differences = []
        for what, b, a in (("gallery", before[0], after[0]), ("job", before[1], after[1])):
            for k in sorted(b.keys() | a.keys()):
                if b.get(k) != a.get(k):
                    differences.append(
                        f"{what} {k}: before {b.get(k)!r:.300} after {a.get(k)!r:.300}"
                    )
        s.rebuild = {
            "galleries": len(before[0]),
            "jobs": len(before[1]),
            "ready_s": round(ready_s, 1),
            "differences": differences,
        }
        s.problems += [f"rebuild differs: {d}" for d in differences]

    def run(self) -> Summary:
        """Start everything, soak, check, stop everything; return the summary (also on failure)."""
        t0 = time.monotonic()
        try:
            bootstrap = self.start_cluster()
            self.config.log(f"cluster up: {bootstrap}; pipeline in {self.root}")
            self.start_pipeline(bootstrap)
            asyncio.run(self.soak())
        except Exception as exc:
            self.summary.problems.append(f"the soak stopped: {exc!r}")
            raise
        finally:
            if self.pipeline is not None:
                self.pipeline.stop()
            if self.cluster is not None:
                self.cluster.stop()
            self.summary.elapsed_s = time.monotonic() - t0
        return self.summary


def run(config: Config) -> Summary:
    """Run one soak (see the module docstring) and return its summary.

    Raises:
        Exception: the harness itself failed (a part did not start, the cluster was
            unreachable): the run is not a finding then; the summary is lost.
    """
    return Soak(config).run()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m darkroom_dev.chaos``: run the soak, print the table; 1 on any finding."""
    parser = argparse.ArgumentParser(
        prog="python -m darkroom_dev.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--minutes", type=float, default=30.0, help="uploads and faults last this long"
    )
    parser.add_argument("--seed", type=int, default=1, help="draws the faults, victims and uploads")
    parser.add_argument("--workers-per-stage", type=int, default=2)
    parser.add_argument(
        "--brokers", type=int, default=3, help="3: a cluster with broker kills; 1: none"
    )
    parser.add_argument("--root", type=Path, help="working folder (default: a new temporary one)")
    parser.add_argument(
        "--drain-s", type=float, default=600.0, help="bound on the final wait for every job"
    )
    parser.add_argument("--min-kills", type=int, default=15)
    parser.add_argument(
        "--fail-on-crash", action="store_true", help="a worker exiting by itself fails the run"
    )
    parser.add_argument(
        "--allow-repeats",
        action="store_true",
        help="list an identical repeated cataloged event (same event_id), do not fail on it",
    )
    parser.add_argument("--out", type=Path, help="write the JSON summary here")
    parser.add_argument(
        "--keep", action="store_true", help="keep the working folder (logs) on success"
    )
    args = parser.parse_args(argv)
    # The harness's own clients (uploads, tracker) would print every broker kill's retries.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    config = Config(
        minutes=args.minutes,
        seed=args.seed,
        workers_per_stage=args.workers_per_stage,
        brokers=args.brokers,
        drain_s=args.drain_s,
        min_kills=args.min_kills,
        fail_on_crash=args.fail_on_crash,
        fail_on_repeat=not args.allow_repeats,
        log=lambda line: print(line, flush=True),
    )
    if args.root:
        config.root = args.root
    summary = run(config)
    print(table(summary), flush=True)
    if args.out:
        args.out.write_text(json.dumps(dataclasses.asdict(summary), indent=2) + "\n")
    if summary.passed and not args.keep:
        shutil.rmtree(config.root, ignore_errors=True)
    else:
        print(f"working folder (logs, slots, cluster): {config.root}")
    return 0 if summary.passed else 1


if __name__ == "__main__":
    sys.exit(main())
