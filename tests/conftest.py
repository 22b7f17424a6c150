"""End-to-end fixtures: the four services as real processes against the real broker."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from darkroom_cli.tracker import JobEnd
from darkroom_common.storage import StorageSettings
from darkroom_dev.local.jars import repo_root
from darkroom_dev.local.pipeline import LocalPipeline, start_local_pipeline
from darkroom_schemas import UploadedV1

CORPUS = Path(os.environ.get("DARKROOM_CORPUS") or repo_root().parent / "shared" / "corpus")
PARTITIONS = 4


def start_pipeline(
    bootstrap: str,
    root: Path,
    *,
    env: dict[str, str] | None = None,
    storage: StorageSettings | None = None,
) -> LocalPipeline:
    """Start a pipeline on a fresh topic prefix with fast retries (plus ``env`` settings).

    ``storage``: the object store (an existing S3 bucket); default a filesystem store in ``root``.
    """
    return start_local_pipeline(
        bootstrap,
        f"e2e{uuid.uuid4().hex[:8]}.",
        root,
        partitions=PARTITIONS,
        env={"DARKROOM_RETRY_BASE_DELAY_S": "0.05", **(env or {})},
        storage=storage,
    )


def run_files(
    pipeline: LocalPipeline,
    paths: list[Path],
    *,
    gallery: str,
    timeout_s: float = 240,
    profile: str | None = None,
) -> dict[str, tuple[UploadedV1, JobEnd]]:
    """Upload ``paths`` to ``gallery`` and return each job's end by file name (all must end)."""
    results = asyncio.run(
        pipeline.run(paths, gallery=gallery, timeout_s=timeout_s, profile=profile)
    )
    missing = [u.filename for u, end in results if end is None]
    assert not missing, f"no outcome within {timeout_s} s for {missing}"
    return {u.filename: (u, end) for u, end in results if end is not None}
