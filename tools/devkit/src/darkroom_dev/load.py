"""Upload load: N uploads from C concurrent clients through the upload API, followed to ``cataloged``.

Shared by ``bench/load_bench.py`` (prints the figures) and ``tests/test_load.py``
(asserts them), so both measure the same thing:

* Each client is one user: its own ``httpx.AsyncClient`` holding one keep-alive
  connection, posting its files one after the other as a multipart ``file``
  part with its API key (``POST /v1/galleries/{g}/uploads``). All clients start
  together, so the first C uploads arrive as one burst.
* Ingest fails the same bytes uploaded twice to one gallery as ``duplicate``, so
  every upload is made distinct for its gallery by spreading, not by editing
  bytes: client ``i`` sends its k-th file, photo ``k mod P``, to gallery
  ``<run>-c<i>-g<k div P>``; no gallery receives the same photo twice and the
  bytes are the corpus files unmodified.
* A refusal the API documents as passing (503 ``broker_unavailable``,
  ``storage_unavailable``, ``not_ready``: "try again") or a 429 carrying
  ``Retry-After`` is retried as a real client would, up to :data:`MAX_ATTEMPTS`,
  after ``Retry-After`` seconds or 0.5 s doubled per attempt; the retries are
  counted. Every other refusal is final, e.g. 429 ``gallery_full``, which stays
  true until images are deleted. A transport error is final too: retrying a POST
  whose answer was lost could upload the file twice.
* Latency upload → cataloged runs from the client's first request start (wall
  clock) to the ``cataloged`` event's ``occurred_at`` (the catalog's time of the
  terminal transition; same host, same clock).
"""

from __future__ import annotations

import asyncio
import mimetypes
import ssl
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from darkroom_cli.tracker import JobEnd, JobTracker
from darkroom_common.topics import read_to_end
from darkroom_dev.local.pipeline import LocalPipeline
from darkroom_schemas import CatalogedV1, WireFormatError, decode

MAX_ATTEMPTS = 5
"""Attempts per upload, the first included, for refusals that say to try again."""
RETRIED_503 = frozenset({"broker_unavailable", "storage_unavailable", "not_ready"})
"""503 reasons the upload API documents as passing ("try again")."""
PHOTOS = (
    "jpeg/exif_canon_40d_makernote.jpg",
    "jpeg/exif_fujifilm_finepix6900.jpg",
    "jpeg/exif_nikon_d70.jpg",
    "jpeg/exif_olympus_c8080wz.jpg",
    "jpeg/exif_panasonic_dmc-fz30.jpg",
    "jpeg/exif_pentax_k10d.jpg",
    "jpeg/exif_gps_only_thompson_springs.jpg",
    "formats/grayscale_gray22_icc.jpg",
    "formats/tiff_16bit_rgb_icc.tiff",
    "jpeg/exif_gps_nikon_coolpix_p6000.jpg",
)
"""Corpus photos uploaded (paths under the corpus): real camera files, small to medium
(100x66 to 640x480), so 1,000 jobs with the ``default`` profile fit in minutes on 2 cores."""


def percentile(values: Sequence[float], q: float) -> float:
    """Return the nearest-rank ``q`` quantile (0–1) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Upload:
    """One upload as its client saw it; times are wall-clock epoch seconds."""

    client: int
    gallery_id: str
    path: Path
    started: float = 0.0
    """Start of the first attempt."""
    answered: float = 0.0
    """Arrival of the final answer (or of the transport error)."""
    status: int | None = None
    """Final HTTP status; None after a transport error."""
    reason: str | None = None
    """The refusal's ``reason`` code, or ``transport:<exception class>``; None when accepted."""
    job_id: str | None = None
    retried: list[str] = field(default_factory=list)
    """``"<status> <reason>"`` of each refusal that was retried."""

    @property
    def accepted(self) -> bool:
        """Whether the API answered 202 with a job id."""
        return self.status == 202 and self.job_id is not None


def plan(uploads: int, clients: int, photos: Sequence[Path], run: str) -> list[list[Upload]]:
    """Return each client's uploads in order (see the module docstring for the galleries).

    Upload ``j`` goes to client ``j mod clients``.

    Raises:
        ValueError: ``uploads`` or ``clients`` below 1, or no photos.
    """
    if uploads < 1 or clients < 1 or not photos:
        raise ValueError("need at least one upload, one client and one photo")
    out: list[list[Upload]] = [[] for _ in range(min(clients, uploads))]
    for j in range(uploads):
        client = j % len(out)
        k = len(out[client])
        gallery = f"{run}-c{client}-g{k // len(photos)}"
        out[client].append(Upload(client, gallery, photos[k % len(photos)]))
    return out


def _retry_delay(response: httpx.Response, reason: str | None, attempt: int) -> float | None:
    hinted = response.headers.get("retry-after", "").strip()
    if response.status_code == 429 and not hinted:
        return None
    if response.status_code not in (429, 503) or (
        response.status_code == 503 and reason not in RETRIED_503
    ):
        return None
    try:
        return max(0.0, float(hinted))
    except ValueError:
        return 0.5 * 2 ** (attempt - 1)


async def post_upload(http: httpx.AsyncClient, upload: Upload, data: bytes) -> None:
    """POST one file as multipart ``file``, retrying passing refusals; fill ``upload`` in place."""
    ctype = mimetypes.guess_type(upload.path.name)[0] or "application/octet-stream"
    upload.started = time.time()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            response = await http.post(
                f"/v1/galleries/{upload.gallery_id}/uploads",
                files={"file": (upload.path.name, data, ctype)},
            )
        except httpx.HTTPError as exc:
            upload.answered, upload.status = time.time(), None
            upload.reason = f"transport:{type(exc).__name__}"
            return
        upload.answered, upload.status = time.time(), response.status_code
        if response.status_code == 202:
            upload.job_id, upload.reason = response.json()["job_id"], None
            return
        try:
            upload.reason = str(response.json()["reason"])
        except (ValueError, KeyError, TypeError):
            upload.reason = f"http_{response.status_code}"
        delay = _retry_delay(response, upload.reason, attempt)
        if delay is None or attempt == MAX_ATTEMPTS:
            return
        upload.retried.append(f"{response.status_code} {upload.reason}")
        await asyncio.sleep(delay)


async def burst(api: str, key: str, clients: list[list[Upload]], *, timeout_s: float) -> None:
    """Run every client at once, each posting its uploads in order on its own connection.

    Args:
        api: the upload API's base URL.
        key: an API key with the ``upload`` scope (and ``read``: the API forwards it
            to the catalog API for the gallery limit check).
        clients: :func:`plan`'s output; filled in place.
        timeout_s: httpx timeout of one request (connect, read, write, pool), seconds.
    """
    payloads = {u.path: u.path.read_bytes() for c in clients for u in c}
    # One TLS context for all: httpx builds one per client otherwise (~35 ms of CPU each),
    # which would stall this event loop in the middle of the burst.
    tls = ssl.create_default_context()
    sessions = [
        httpx.AsyncClient(
            base_url=api,
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=1),
            verify=tls,
        )
        for _ in clients
    ]

    async def run(http: httpx.AsyncClient, uploads: list[Upload]) -> None:
        async with http:
            for upload in uploads:
                await post_upload(http, upload, payloads[upload.path])

    await asyncio.gather(*(run(h, c) for h, c in zip(sessions, clients, strict=True)))


async def cataloged_records(bootstrap: str, topic: str, job_ids: set[str]) -> Counter[str]:
    """Count the records on ``topic`` (``cataloged``) per job id in ``job_ids``, up to its current end."""
    counts: Counter[str] = Counter()
    async for r in read_to_end(bootstrap, [topic]):
        try:
            event = decode(r.value or b"")
        except WireFormatError:
            continue
        if isinstance(event, CatalogedV1) and event.job_id in job_ids:
            counts[event.job_id] += 1
    return counts


@dataclass
class LoadReport:
    """What a load run measured; :meth:`lines` prints it, :meth:`figures` is its JSON."""

    clients: list[list[Upload]]
    ends: dict[str, JobEnd]
    cataloged: Counter[str]
    """Records on ``cataloged`` per accepted job (exactly one each when nothing was duplicated)."""
    photos: list[Path]

    @property
    def uploads(self) -> list[Upload]:
        """Every upload, client by client."""
        return [u for c in self.clients for u in c]

    @property
    def accepted(self) -> list[Upload]:
        """The uploads answered 202."""
        return [u for u in self.uploads if u.accepted]

    @property
    def lost(self) -> list[str]:
        """Job ids of accepted uploads that never reached a terminal state (cataloged or dead letter)."""
        return [u.job_id for u in self.accepted if u.job_id and u.job_id not in self.ends]

    @property
    def duplicates(self) -> int:
        """``cataloged`` records beyond the first per job."""
        return sum(n - 1 for n in self.cataloged.values() if n > 1)

    def latencies_s(self) -> list[float]:
        """Upload → cataloged per cataloged job: first request start to ``occurred_at``, seconds."""
        out = []
        for u in self.accepted:
            end = self.ends.get(u.job_id or "")
            if end is not None and end.cataloged is not None:
                out.append(end.cataloged.occurred_at.timestamp() - u.started)
        return out

    def figures(self) -> dict[str, Any]:
        """Every figure as JSON-ready values (seconds, counts, per-second rates)."""
        ups, acc = self.uploads, self.accepted
        t0 = min(u.started for u in ups)
        ends = [self.ends[u.job_id] for u in acc if u.job_id in self.ends]
        done = [e.cataloged.occurred_at.timestamp() for e in ends if e.cataloged is not None]
        lat, resp = self.latencies_s(), [u.answered - u.started for u in acc]
        quant = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}
        return {
            "uploads": len(ups),
            "clients": len(self.clients),
            "galleries": len({u.gallery_id for u in ups}),
            "photos": [p.name for p in self.photos],
            "accepted": len(acc),
            "refused": dict(Counter(f"{u.status} {u.reason}" for u in ups if not u.accepted)),
            "retries": dict(Counter(r for u in ups for r in u.retried)),
            "complete": sum(e.status == "complete" for e in ends),
            "failed": dict(Counter(e.reason for e in ends if e.status == "failed")),
            "dead_letter": dict(Counter(e.reason for e in ends if e.status == "dead_letter")),
            "lost": len(self.lost),
            "duplicate_cataloged": self.duplicates,
            "upload_window_s": max(u.answered for u in acc) - t0 if acc else None,
            "api_uploads_per_s": len(acc) / (max(u.answered for u in acc) - t0) if acc else 0.0,
            "end_to_end_window_s": max(done) - t0 if done else None,
            "end_to_end_jobs_per_s": len(done) / (max(done) - t0) if done else 0.0,
            "latency_s": {k: percentile(lat, q) for k, q in quant.items()},
            "api_response_s": {k: percentile(resp, q) for k, q in quant.items()},
        }

    def lines(self) -> list[str]:
        """The figures as lines for a person (the README quotes them)."""
        f = self.figures()

        def q(d: dict[str, float]) -> str:
            return "  ".join(f"{k} {v:.2f} s" for k, v in d.items())

        return [
            f"{f['uploads']} uploads from {f['clients']} concurrent clients (one connection each) "
            f"into {f['galleries']} galleries; distinct per gallery by spreading: each gallery "
            f"gets each of {len(f['photos'])} unmodified corpus photos at most once "
            f"({', '.join(f['photos'])})",
            f"uploads accepted (202): {f['accepted']}   refused: {f['refused'] or 0}   "
            f"retried refusals: {f['retries'] or 0}",
            f"jobs complete: {f['complete']}   failed: {f['failed'] or 0}   "
            f"dead-lettered: {f['dead_letter'] or 0}   lost (never terminal): {f['lost']}   "
            f"duplicate cataloged: {f['duplicate_cataloged']}",
            f"upload API throughput: {f['api_uploads_per_s']:.1f} uploads/s accepted "
            f"(all answered {f['upload_window_s'] or 0:.1f} s after the first request)",
            f"end-to-end throughput: {f['end_to_end_jobs_per_s']:.2f} jobs/s to cataloged "
            f"(last cataloged {f['end_to_end_window_s'] or 0:.1f} s after the first request)",
            f"upload → cataloged latency: {q(f['latency_s'])}",
            f"upload API response (request start → 202, retries included): {q(f['api_response_s'])}",
        ]


async def run_load(
    api: str,
    key: str,
    pipeline: LocalPipeline,
    *,
    uploads: int,
    clients: int,
    photos: Sequence[Path],
    run: str,
    timeout_s: float,
    request_timeout_s: float = 120.0,
    should_abort: Callable[[], str | None] | None = None,
) -> LoadReport:
    """Fire ``uploads`` from ``clients`` concurrent clients and follow every accepted job to its end.

    Args:
        api: the upload API's base URL (started on ``pipeline``, see :func:`start_upload_api`).
        key: API key with the ``upload`` and ``read`` scopes.
        pipeline: the running pipeline (its bootstrap and topic prefix are read).
        photos: the files uploaded (each at most once per gallery).
        run: gallery id prefix, unique per run.
        timeout_s: how long to wait for the jobs after the last answer, seconds.
        should_abort: returns why to stop waiting early (e.g. ``pipeline.died``).

    Raises:
        RuntimeError: ``should_abort`` returned a reason.
    """
    tracker = JobTracker(pipeline.bootstrap, topic_prefix=pipeline.prefix)
    await tracker.start()  # before the first upload: no outcome is missed
    work = plan(uploads, clients, photos, run)
    try:
        await burst(api, key, work, timeout_s=request_timeout_s)
        jobs = [u.job_id for c in work for u in c if u.accepted and u.job_id]
        ends = await tracker.wait(jobs, timeout_s=timeout_s, should_abort=should_abort)
    finally:
        await tracker.stop()
    counts = await cataloged_records(pipeline.bootstrap, f"{pipeline.prefix}cataloged", set(jobs))
    return LoadReport(work, ends, counts, list(photos))


def start_upload_api(pipeline: LocalPipeline, *, timeout_s: float = 120.0) -> str:
    """Start the upload API process next to ``pipeline``'s catalog, as ``darkroom serve`` does.

    The API asks the catalog API for each gallery's image count (the early 429
    ``gallery_full``). Returns the API's base URL once ``/readyz`` answers 200.

    Raises:
        RuntimeError: the process exited, or was not ready within ``timeout_s``.
    """
    catalog = next(p for p in pipeline.services.processes if p.name == "catalog")
    process = pipeline.services.start(
        "upload-api",
        extra_env={"DARKROOM_INGEST_CATALOG_API_URL": f"http://127.0.0.1:{catalog.web_port}"},
    )
    url = f"http://127.0.0.1:{process.web_port}"
    process.wait_ok(f"{url}/readyz", time.monotonic() + timeout_s)
    return url
