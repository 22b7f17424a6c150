"""End-to-end fixtures: the four services as real processes against the real broker."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from darkroom_cli.local.jars import repo_root
from darkroom_cli.local.services import ServiceGroup
from darkroom_cli.tracker import JobEnd, JobTracker
from darkroom_common.storage import FilesystemStore
from darkroom_common.topics import create_topics, layouts
from darkroom_common.uploads import UploadPublisher, upload_file
from darkroom_schemas import UploadedV1

CORPUS = Path(os.environ.get("DARKROOM_CORPUS") or repo_root().parent / "shared" / "corpus")
PARTITIONS = 4


@dataclass
class Pipeline:
    """A running pipeline on its own topic prefix, data folder and gallery."""

    bootstrap: str
    prefix: str
    root: Path
    services: ServiceGroup
    gallery: str = field(default_factory=lambda: f"g{uuid.uuid4().hex[:10]}")

    @property
    def objects(self) -> Path:
        return self.root / "objects"

    def store(self) -> FilesystemStore:
        return FilesystemStore(self.objects)

    def path(self, key: str) -> Path:
        """Return the local file of object ``key``."""
        return self.store().local_path(key)

    async def upload(
        self, paths: list[Path], *, profile: str | None = None, gallery: str | None = None
    ) -> list[UploadedV1]:
        store = self.store()
        async with UploadPublisher(self.bootstrap, topic_prefix=self.prefix) as publisher:
            return [
                await upload_file(
                    store, publisher, p, gallery_id=gallery or self.gallery, profile=profile
                )
                for p in paths
            ]

    async def run(
        self, paths: list[Path], *, timeout_s: float = 240, profile: str | None = None
    ) -> dict[str, tuple[UploadedV1, JobEnd]]:
        """Upload ``paths`` and wait for every job's end; keyed by file name."""
        tracker = JobTracker(self.bootstrap, topic_prefix=self.prefix)
        await tracker.start()
        try:
            uploads = await self.upload(paths, profile=profile)
            ends = await tracker.wait(
                [u.job_id for u in uploads], timeout_s=timeout_s, should_abort=self.died
            )
        finally:
            await tracker.stop()
        missing = [u.filename for u in uploads if u.job_id not in ends]
        assert not missing, f"no outcome within {timeout_s} s for {missing}"
        return {u.filename: (u, ends[u.job_id]) for u in uploads}

    def died(self) -> str | None:
        dead = self.services.exited()
        if dead:
            return f"{dead[0].name} exited ({dead[0].process.returncode}):\n{dead[0].tail()}"
        return None


def start_pipeline(
    bootstrap: str, root: Path, *, services=("ingest", "raw-provider", "variants", "catalog")
) -> Pipeline:
    prefix = f"e2e{uuid.uuid4().hex[:8]}."
    asyncio.run(create_topics(bootstrap, layouts(prefix, PARTITIONS)))
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DARKROOM_TOPIC_PREFIX": prefix,
        "DARKROOM_TOPIC_PARTITIONS": str(PARTITIONS),
        "DARKROOM_DATA_DIR": str(root / "state"),
        "DARKROOM_STORAGE__BACKEND": "local",
        "DARKROOM_STORAGE__ROOT": str(root / "objects"),
        "DARKROOM_RETRY_BASE_DELAY_S": "0.05",
    }
    group = ServiceGroup(env, root / "logs")
    for name in services:
        group.start(name)
    return Pipeline(bootstrap, prefix, root, group)


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """The whole pipeline, one process per service, for the tests of one module."""
    p = start_pipeline(kafka_bootstrap, tmp_path_factory.mktemp("pipeline"))
    try:
        yield p
    finally:
        p.services.stop()
