"""One local pipeline: topics created, four services started, uploads and their outcomes.

Shared by ``darkroom run``, the end-to-end tests and the pipeline benchmark, so
all three start the services the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from darkroom_cli.tracker import JobEnd, JobTracker
from darkroom_common.storage import FilesystemStore, ObjectStore, StorageSettings, open_store
from darkroom_common.topics import create_topics, layouts
from darkroom_common.uploads import UploadPublisher, upload_file
from darkroom_dev.local.services import SERVICES, ServiceGroup
from darkroom_schemas import UploadedV1


@dataclass
class LocalPipeline:
    """The services of one deployment (topic prefix) on a filesystem or S3 store.

    Args:
        bootstrap: the Kafka cluster.
        prefix: topic prefix, e.g. ``darkroom.``; also names the consumer groups.
        root: data folder: ``objects/`` (the filesystem store), ``state/`` (the workers' tables) and ``logs/``.
        partitions: partitions of every topic.
        env: further settings for every service (``DARKROOM_…``).
        storage: the object store of the services and of :attr:`store`; ``None``
            means a filesystem store in ``root/objects``. An S3 bucket must exist.
        replication_factor: replicas of every topic (at most the cluster's broker
            count); topics get ``min.insync.replicas`` ``max(1, rf - 1)`` and the
            services ``DARKROOM_TOPIC_REPLICATION_FACTOR``, so their start-up check
            wants it too.
    """

    bootstrap: str
    prefix: str
    root: Path
    partitions: int = 8
    env: Mapping[str, str] | None = None
    storage: StorageSettings | None = None
    replication_factor: int = 1

    def __post_init__(self) -> None:
        self.root = self.root.absolute()
        if self.storage is None:
            self.storage = StorageSettings(backend="local", root=self.root / "objects")
        self.services = ServiceGroup(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "DARKROOM_TOPIC_PREFIX": self.prefix,
                "DARKROOM_TOPIC_PARTITIONS": str(self.partitions),
                "DARKROOM_TOPIC_REPLICATION_FACTOR": str(self.replication_factor),
                "DARKROOM_DATA_DIR": str(self.root / "state"),
                **storage_env(self.storage),
                **(self.env or {}),
            },
            self.root / "logs",
        )
        self.store: ObjectStore = open_store(self.storage)
        """The services' store. An S3 store's client belongs to the event loop that
        used it first: ``await store.close()`` before using it from another loop."""

    async def create_topics(self) -> dict[str, str]:
        """Create the registry's topics for this prefix (idempotent), :attr:`replication_factor` replicas each.

        Raises:
            TopicMisconfigured: the broker refused (e.g. fewer brokers than replicas).
            BrokerUnavailable: the cluster cannot be reached.
        """
        return await create_topics(
            self.bootstrap, layouts(self.prefix, self.partitions, self.replication_factor)
        )

    def start(self, names: Iterable[str] = SERVICES) -> None:
        """Start one process per service in ``names``."""
        for name in names:
            self.services.start(name)

    def stop(self) -> None:
        """Stop every service process."""
        self.services.stop()

    def path(self, key: str) -> Path:
        """Return the local file of object ``key``.

        Raises:
            TypeError: the pipeline runs on S3 (read through :attr:`store` instead).
        """
        if not isinstance(self.store, FilesystemStore):
            raise TypeError(f"{self.store!r} has no local files; read objects through .store")
        return self.store.local_path(key)

    def died(self) -> str | None:
        """Return why a service process exited, or ``None`` while all run."""
        dead = self.services.exited()
        if dead:
            return f"{dead[0].name} exited ({dead[0].process.returncode}):\n{dead[0].tail()}"
        return None

    async def upload(
        self, paths: Iterable[Path], *, gallery: str, profile: str | None = None
    ) -> list[UploadedV1]:
        """Store each file and produce its ``uploaded`` event, in order.

        Closes the store's connections afterwards, so the next call may run in
        another event loop (``asyncio.run``).
        """
        try:
            async with UploadPublisher(self.bootstrap, topic_prefix=self.prefix) as publisher:
                return [
                    await upload_file(self.store, publisher, p, gallery_id=gallery, profile=profile)
                    for p in paths
                ]
        finally:
            await self.store.close()

    async def run(
        self,
        paths: Iterable[Path],
        *,
        gallery: str,
        timeout_s: float,
        profile: str | None = None,
    ) -> list[tuple[UploadedV1, JobEnd | None]]:
        """Upload ``paths`` and wait for each job's end (``None`` where none came in time)."""
        tracker = JobTracker(self.bootstrap, topic_prefix=self.prefix)
        await tracker.start()
        try:
            uploads = await self.upload(paths, gallery=gallery, profile=profile)
            ends = await tracker.wait(
                [u.job_id for u in uploads], timeout_s=timeout_s, should_abort=self.died
            )
        finally:
            await tracker.stop()
        return [(u, ends.get(u.job_id)) for u in uploads]


def start_local_pipeline(
    bootstrap: str,
    prefix: str,
    root: Path,
    *,
    partitions: int = 8,
    env: Mapping[str, str] | None = None,
    storage: StorageSettings | None = None,
    replication_factor: int = 1,
) -> LocalPipeline:
    """Create the topics and start one process of each service (see :class:`LocalPipeline`)."""
    pipeline = LocalPipeline(bootstrap, prefix, root, partitions, env, storage, replication_factor)
    asyncio.run(pipeline.create_topics())
    pipeline.start()
    return pipeline


def storage_env(storage: StorageSettings) -> dict[str, str]:
    """Return the fields set in ``storage`` as the ``DARKROOM_STORAGE__…`` variables (secrets in clear)."""
    env = {}
    for name, value in storage.model_dump(exclude_unset=True, exclude_none=True).items():
        plain = value.get_secret_value() if isinstance(value, SecretStr) else value
        env[f"DARKROOM_STORAGE__{name.upper()}"] = str(plain)
    return env
