"""An atheris (libFuzzer) target for the ingest validator's byte-level path.

Each input is the content of an upload named ``upload``: it is stored in a filesystem
object store and decided by :func:`~darkroom_ingest.validate.validate_upload` (download,
SHA-256, probe, ExifTool for accepted files), exactly as :func:`.runner.check` does for
the gauntlet. A rejection is a verdict, not a failure; any exception, an accepted file
over the pixel limit, or an event that does not survive the Avro wire format is a crash.
The imaging engine and the ingest service are instrumented for coverage feedback.

Run from the repository root with libFuzzer options and seed files or directories::

    python -m tests.gauntlet.fuzz_validator -max_total_time=60 -rss_limit_mb=2048 SEEDS...
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["darkroom_imaging", "darkroom_ingest"]):
    from darkroom_common.storage import FilesystemStore
    from darkroom_ingest.settings import IngestSettings

    from .cases import Case
    from .runner import check

_WORK = tempfile.TemporaryDirectory(prefix="fuzz-validator-")
_STORE = FilesystemStore(Path(_WORK.name) / "store", fsync=False)
_SETTINGS = IngestSettings(work_dir=_WORK.name)
_LOOP = asyncio.new_event_loop()


def TestOneInput(data: bytes) -> None:
    """Validate ``data`` as an upload; raise on a crash or a broken invariant."""
    verdict, problem = _LOOP.run_until_complete(
        check(Case("fuzz", data, "upload"), "fuzz", _STORE, _SETTINGS)
    )
    if problem is not None:
        raise AssertionError(f"{verdict}: {problem}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
