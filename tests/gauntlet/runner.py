"""One gauntlet worker: run a shard of the cases through the ingest validator, one JSON line each.

Run as ``python -m tests.gauntlet.runner SHARD SHARDS START`` from the repository root: it
takes the cases whose index ``i`` (in :func:`~tests.gauntlet.cases.all_cases` order) has
``i % SHARDS == SHARD`` and ``i >= START``, and for each prints two lines, before and after::

    {"start": 17, "name": "truncate/..."}
    {"i": 17, "name": "truncate/...", "verdict": "truncated", "problem": null,
     "seconds": 0.004, "rss_kib": 81234}

``verdict`` is ``accepted``, a reason code, or ``refused`` (the upload event could not be
built); ``problem`` says why the case failed (an unexpected verdict, a key outside its
gallery prefix, a missing warning, an event that does not survive the wire), or is null.
An exception is reported as the problem ``crash: <traceback>``. The last line is
``{"done": true, ...}`` with the peak resident memory of this process and of its ExifTool.
The caller owns the time bound: a worker that goes silent is killed and restarted after
the case in flight.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import pydantic
from prometheus_client import CollectorRegistry

from darkroom_common.errors import InvalidKey
from darkroom_common.metrics import Metrics
from darkroom_common.objects import image_prefix, original_key
from darkroom_common.storage import FilesystemStore, validate_key
from darkroom_imaging.exiftool import shared_exiftool
from darkroom_ingest.settings import IngestSettings
from darkroom_ingest.validate import validate_upload
from darkroom_schemas import UploadedV1, decode, encode

from .cases import ACCEPTED, REFUSED, Case, all_cases

METRICS = Metrics(CollectorRegistry())
"""This worker's own families: nothing scrapes a gauntlet worker."""
GALLERY = "gauntlet"


class NoIndex:
    """A gallery index that remembers nothing: every case is a new image of an empty gallery."""

    def image_for(self, gallery_id: str, sha256: str) -> str | None:
        """Never a duplicate."""
        return None

    def count(self, gallery_id: str) -> int:
        """Always empty."""
        return 0

    def add(self, gallery_id: str, sha256: str, image_id: str) -> None:
        """Forget it."""


async def check(
    case: Case, image_id: str, store: FilesystemStore, settings: IngestSettings
) -> tuple[str, str | None]:
    """Store ``case`` as an upload, validate it and return ``(verdict, problem or None)``.

    The original goes under ``original_key(GALLERY, image_id, case.filename)``, which must
    stay directly under the image's prefix; the ``uploaded`` and ``validated`` events must
    survive an Avro round trip. Raises whatever the product raises (a crash).
    """
    try:
        key = original_key(GALLERY, image_id, case.filename)
        event = UploadedV1(
            job_id=image_id,
            gallery_id=GALLERY,
            image_id=image_id,
            correlation_id="gauntlet",
            object_key=key,
            filename=case.filename,
            size_bytes=len(case.data),
        )
    except (InvalidKey, pydantic.ValidationError):
        return REFUSED, _unexpected(case, REFUSED)
    prefix = image_prefix("originals", GALLERY, image_id)
    if not key.startswith(prefix) or "/" in key[len(prefix) :] or validate_key(key) != key:
        return "key_escape", f"the name {case.filename!r} gave the key {key!r}"
    if decode(encode(event)) != event:
        return "wire", "the uploaded event changes on the wire"
    await store.put(key, case.data)
    try:
        out = await validate_upload(
            event, store=store, index=NoIndex(), settings=settings, metrics=METRICS
        )
    finally:
        await store.delete(key)
    if decode(encode(out)) != out:
        return "wire", "the validated event changes on the wire"
    if not out.accepted:
        if not out.reason_code or not out.reason_message:
            return str(out.reason_code), "a rejection without a reason code and a message"
        return out.reason_code, _unexpected(case, out.reason_code)
    if out.probe is None or out.metadata is None:
        return ACCEPTED, "accepted without probe or metadata"
    if out.probe.pixels > settings.max_pixels:
        return ACCEPTED, f"accepted {out.probe.pixels} pixels, over the limit"
    if case.warning and not any(case.warning in w for w in out.metadata.warnings):
        return ACCEPTED, f"no warning {case.warning!r} in {out.metadata.warnings}"
    return ACCEPTED, _unexpected(case, ACCEPTED)


def _unexpected(case: Case, verdict: str) -> str | None:
    if case.expect is None or verdict in case.expect:
        return None
    return f"verdict {verdict}, expected one of {sorted(case.expect)}"


def _hwm_kib(pid: int | None) -> int:
    """Peak resident memory (VmHWM) of process ``pid`` in KiB, 0 when unknown."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, TypeError):
        return 0
    return next(
        (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")), 0
    )


async def main(shard: int, shards: int, start: int) -> None:
    """Run the shard from ``start`` on, printing one JSON line per case, then the summary."""
    with tempfile.TemporaryDirectory(prefix="gauntlet-") as tmp:
        store = FilesystemStore(Path(tmp) / "store", fsync=False)
        settings = IngestSettings(work_dir=tmp)
        for i, case in enumerate(all_cases()):
            if i % shards != shard or i < start:
                continue
            print(json.dumps({"start": i, "name": case.name}), flush=True)
            began = time.perf_counter()
            try:
                verdict, problem = await check(case, f"i{i}", store, settings)
            except Exception:
                verdict, problem = "crash", "crash: " + traceback.format_exc(limit=-6)
            line = {
                "i": i,
                "name": case.name,
                "verdict": verdict,
                "problem": problem,
                "seconds": time.perf_counter() - began,
                "rss_kib": _hwm_kib(os.getpid()),
            }
            print(json.dumps(line), flush=True)
        exiftool = shared_exiftool()
        summary = {
            "done": True,
            "rss_kib": _hwm_kib(os.getpid()),
            "exiftool_rss_kib": _hwm_kib(exiftool.pid),
            "exiftool_starts": exiftool.starts,
        }
        print(json.dumps(summary), flush=True)
        exiftool.close()


if __name__ == "__main__":
    asyncio.run(main(*map(int, sys.argv[1:4])))
