"""Shared checks and figures for the fault-injection tests.

A fault test pushes N uploads through a :class:`LocalPipeline`, injects its
fault, waits for every job with a :class:`JobTracker`, then calls
:func:`verify_outcome`, which checks what a user would see and returns a
:class:`FaultReport`; :func:`record` keeps it for the table printed at the end
of the run (``tests/faults/conftest.py``).

The pipeline must be started with :data:`API_ENV` so the catalog API accepts
:data:`READ_KEY`. Objects are checked through ``pipeline.store``: point it at
the S3 store when the services run on S3.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from darkroom_cli.tracker import JobEnd
from darkroom_common.topics import read_to_end
from darkroom_dev.local.pipeline import LocalPipeline
from darkroom_imaging.profiles import load_profile
from darkroom_ingest.testing import KEYS, READ_KEY, auth
from darkroom_schemas import CatalogedV1, UploadedV1, decode

from ..conftest import CORPUS

PHOTOS = [
    CORPUS / rel
    for rel in (
        "large/canon_5d3_22mp.jpg",
        "large/craft_beer_24mp_progressive.jpg",
        "large/sharp_bench_2569067123_aca715a2ee_o.jpg",
        "raw/cr2_canon_img5952.cr2",
        "jpeg/exif_lens_gps_iphone6.jpg",
        "jpeg/exif_lens_gps_nikon_d70s.jpg",
        "jpeg/exif_gps_tahoe.jpg",
        "jpeg/exif_gps_nikon_coolpix_p6000.jpg",
        "formats/icc_adobergb_canon_eos7d.jpg",
        "formats/progressive_960x1280.jpg",
        "orientation/Landscape_6.jpg",
        "orientation/Portrait_3.jpg",
    )
]
"""12 distinct real photos (3 large JPEGs, a full-size CR2, camera JPEGs): all complete.

Distinct files, so none fails as a ``duplicate`` in one gallery."""

API_ENV = {"DARKROOM_AUTH__API_KEYS": json.dumps(KEYS)}
"""Service settings giving the catalog API the test keys (:data:`READ_KEY` reads)."""

REPORTS: list[FaultReport] = []
"""Every report :func:`record` was given in this test run, in order."""


@dataclass
class FaultReport:
    """What one fault did to N uploads.

    Attributes:
        fault: what was injected, e.g. ``"render worker SIGKILL mid-batch"``.
        uploads: N, the jobs pushed.
        complete: jobs that ended ``complete`` with every variant.
        failed: reason code → count of jobs that ended ``failed`` (a dead-lettered
            job that never reached the catalog counts as ``dead_letter:<reason>``).
        lost: jobs with no terminal outcome at all.
        duplicates: extra ``cataloged`` events for one job and attempt, plus images
            listed more than once in a gallery.
        recovery_s: seconds from the end of the fault until the pipeline was over it
            (each test says what it measures, e.g. up to the last job's outcome).
        problems: every violated check, in words (empty when the outcome is right).
    """

    fault: str
    uploads: int
    complete: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    duplicates: int = 0
    recovery_s: float | None = None
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One table row: fault, N, complete, failed by reason, lost, duplicates, recovery."""
        failed = ", ".join(f"{r} ×{n}" for r, n in sorted(self.failed.items())) or "0"
        recovery = "—" if self.recovery_s is None else f"{self.recovery_s:.1f} s"
        return (
            f"{self.fault:<46} {self.uploads:>3} {self.complete:>8}  {failed:<44} "
            f"{self.lost:>4} {self.duplicates:>10} {recovery:>9}"
        )

    @staticmethod
    def header() -> str:
        """The column titles matching :meth:`line`."""
        return (
            f"{'fault':<46} {'N':>3} {'complete':>8}  {'failed (reason ×n)':<44} "
            f"{'lost':>4} {'duplicates':>10} {'recovery':>9}"
        )


def record(report: FaultReport) -> None:
    """Keep ``report`` for the end-of-run table."""
    REPORTS.append(report)


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Return every event of ``topic`` from the beginning to the current end, decoded.

    Events of one key come in their partition's order. Raises
    :class:`~darkroom_schemas.WireFormatError` on a value that is not an event.
    """
    return [decode(r.value or b"") async for r in read_to_end(bootstrap, [topic])]


def catalog_url(pipeline: LocalPipeline) -> str:
    """Base URL of the catalog API of the newest running catalog process."""
    sp = next(
        p
        for p in reversed(pipeline.services.processes)
        if p.name == "catalog" and p.process.poll() is None
    )
    return f"http://127.0.0.1:{sp.web_port}"


async def gallery_items(
    http: httpx.AsyncClient, gallery: str, headers: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Every item ``GET /v1/galleries/{gallery}/images`` lists, all pages (``headers``: auth)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "200"} | ({"cursor": cursor} if cursor else {})
        r = await http.get(f"/v1/galleries/{gallery}/images", params=params, headers=headers)
        r.raise_for_status()
        page = r.json()
        items += page["images"]
        if not (cursor := page.get("next_cursor")):
            return items


async def verify_outcome(
    pipeline: LocalPipeline,
    uploads: Iterable[UploadedV1],
    ends: Mapping[str, JobEnd],
    *,
    fault: str,
    recovery_s: float | None,
    expect_failed: Mapping[str, str] | None = None,
    allow_failed: bool = False,
    gallery_timeout_s: float = 30,
) -> FaultReport:
    """Check the end state of ``uploads`` after a fault and return its report.

    Checks (each violation is one line of ``report.problems``):

    - every job ended: a ``cataloged`` event (or, seen by the tracker in ``ends``,
      a dead letter); a failed job has a reason code;
    - a job in ``expect_failed`` (job_id → reason code) failed with that reason;
      any other job completed (or, with ``allow_failed``, failed with a reason);
    - a complete job's last ``cataloged`` lists every variant of its profile and
      each variant's object exists in ``pipeline.store``;
    - no job has two ``cataloged`` events for one attempt (the whole topic is read);
    - each gallery the uploads went to (``GET /v1/galleries/{g}/images``, all pages)
      lists no image twice, lists every complete job as complete, lists no image
      as complete that the catalog did not complete, and every variant URL of a
      complete image answers 200 with the listed number of bytes (a half-processed
      image fails here). The gallery table follows ``cataloged`` asynchronously, so
      this is retried for up to ``gallery_timeout_s`` seconds.

    Returns the report (not recorded); raises nothing for a wrong outcome, so the
    caller can :func:`record` the figures first and then ``assert not report.problems``.
    """
    uploads = list(uploads)
    expect_failed = expect_failed or {}
    report = FaultReport(fault, len(uploads), recovery_s=recovery_s)
    problems = report.problems
    cataloged = [
        c for c in await read_topic(pipeline.bootstrap, f"{pipeline.prefix}cataloged")
        if isinstance(c, CatalogedV1)
    ]  # fmt: skip
    wanted = {u.job_id for u in uploads}
    for (job_id, attempt), n in Counter((c.job_id, c.attempts) for c in cataloged).items():
        if job_id in wanted and n > 1:
            report.duplicates += n - 1
            problems.append(f"job {job_id} attempt {attempt} cataloged {n} times")
    last = {c.job_id: c for c in cataloged}
    failed: Counter[str] = Counter()
    complete: dict[str, UploadedV1] = {}
    for u in uploads:
        c, end = last.get(u.job_id), ends.get(u.job_id)
        if c is None:
            if end is None or end.dead_letter is None:
                report.lost += 1
                problems.append(f"job {u.job_id} ({u.filename}) has no outcome")
                continue
            reason = f"dead_letter:{end.reason}"
        elif c.status == "complete":
            complete[u.job_id] = u
            names = sorted(v.name for v in c.variants)
            specs = sorted(s.name for s in load_profile(u.profile or "default").specs)
            if names != specs:
                problems.append(f"job {u.job_id} ({u.filename}) complete with {names} ≠ {specs}")
            for v in c.variants:
                if not await pipeline.store.exists(v.object_key):
                    problems.append(f"job {u.job_id}: variant object {v.object_key} is missing")
            if u.job_id in expect_failed:
                problems.append(f"job {u.job_id} completed; expected {expect_failed[u.job_id]}")
            continue
        else:
            reason = c.reason_code or ""
            if not reason or not c.reason_message:
                problems.append(f"job {u.job_id} ({u.filename}) failed without a reason")
        failed[reason] += 1
        want = expect_failed.get(u.job_id)
        if (reason != want) if want else not allow_failed:
            problems.append(
                f"job {u.job_id} ({u.filename}) ended {reason!r}, expected {want or 'complete'}"
            )
    report.complete = len(complete)
    report.failed = dict(failed)
    listed_twice, wrong = await _check_galleries(
        pipeline, uploads, complete, last, gallery_timeout_s
    )
    report.duplicates += listed_twice
    problems += wrong
    return report


async def _check_galleries(
    pipeline: LocalPipeline,
    uploads: list[UploadedV1],
    complete: dict[str, UploadedV1],
    last: Mapping[str, CatalogedV1],
    timeout_s: float,
) -> tuple[int, list[str]]:
    """Return (images listed twice, what is wrong) in the galleries of ``uploads``.

    See :func:`verify_outcome` for the checks.
    """
    base = catalog_url(pipeline)
    galleries = sorted({u.gallery_id for u in uploads})
    deadline = time.monotonic() + timeout_s
    key = auth(READ_KEY)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        while True:
            problems: list[str] = []
            listed_twice = 0
            for g in galleries:
                items = await gallery_items(http, g, key)
                for image_id, n in Counter(i["image_id"] for i in items).items():
                    if n > 1:
                        listed_twice += n - 1
                        problems.append(f"gallery lists {g}/{image_id} {n} times")
                shown = {i["image_id"]: i for i in items if i["status"] == "complete"}
                for u in complete.values():
                    if u.gallery_id == g and u.image_id not in shown:
                        problems.append(f"complete job {u.job_id} is not shown in gallery {g}")
                for image_id, item in shown.items():
                    c = last.get(item["job_id"])
                    if c is not None and c.status != "complete":
                        problems.append(f"gallery {g} shows {image_id} of a {c.status} job")
                    if not item["variants"] or (
                        c is not None
                        and sorted(item["variants"]) != sorted(v.name for v in c.variants)
                    ):
                        problems.append(
                            f"gallery {g} shows {image_id} with {sorted(item['variants'])}"
                        )
                    for name, v in item["variants"].items():
                        # Our own /v1/objects/ route needs the key; a presigned URL must not get it.
                        r = await http.get(
                            v["url"], headers=key if v["url"].startswith("/") else None
                        )
                        if r.status_code != 200 or len(r.content) != v["bytes"]:
                            problems.append(
                                f"gallery {g} image {image_id} variant {name}: {r.status_code}, {len(r.content)} of {v['bytes']} bytes"
                            )
            if not problems or time.monotonic() > deadline:
                return listed_twice, problems
            await asyncio.sleep(1)


async def metric_sums(pipeline: LocalPipeline, sample: str, **labels: str) -> dict[str, float]:
    """Sum ``sample`` over each running service's ``/metrics`` where the sample has ``labels``.

    ``sample`` is a sample name such as ``darkroom_retries_total``; the result maps
    a process name (``ingest``, ``variants``…; several workers of one stage add up)
    to the sum, 0.0 for a process without such samples.
    Raises ``httpx.HTTPError`` when a worker does not answer.
    """
    sums: Counter[str] = Counter()
    async with httpx.AsyncClient(timeout=10) as http:
        for sp in pipeline.services.processes:
            if sp.process.poll() is not None:
                continue
            page = (await http.get(f"http://127.0.0.1:{sp.web_port}/metrics")).text
            sums[sp.name] += sum(
                s.value
                for family in text_string_to_metric_families(page)
                for s in family.samples
                if s.name == sample and labels.items() <= s.labels.items()
            )
    return dict(sums)
