"""Follow jobs to their end: read ``cataloged`` and the dead-letter topics for given job ids."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from darkroom_common.producer import METADATA_MAX_AGE_MS
from darkroom_schemas import CatalogedV1, DeadLetterV1, WireFormatError, decode
from darkroom_schemas.topics import STAGES


@dataclass
class JobEnd:
    """How a job ended: its ``cataloged`` event, or the dead letter that stopped it."""

    job_id: str
    cataloged: CatalogedV1 | None = None
    dead_letter: DeadLetterV1 | None = None
    seconds: float | None = None

    @property
    def status(self) -> str:
        """``complete``, ``failed`` or ``dead_letter``."""
        if self.cataloged is not None:
            return self.cataloged.status
        return "dead_letter"

    @property
    def reason(self) -> str | None:
        """The failure's reason code, if any."""
        if self.cataloged is not None:
            return self.cataloged.reason_code
        return self.dead_letter.reason_code if self.dead_letter else None


class JobTracker:
    """Reads ``cataloged`` and every ``<stage>.dlq`` from their current end.

    Start it before producing uploads so no outcome is missed.

    Args:
        bootstrap: the Kafka cluster.
        topic_prefix: the deployment's topic prefix.
    """

    def __init__(self, bootstrap: str, *, topic_prefix: str = "darkroom.") -> None:
        self.topics = [f"{topic_prefix}cataloged"] + [
            f"{topic_prefix}{s.dead_letter}" for s in STAGES
        ]
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            metadata_max_age_ms=METADATA_MAX_AGE_MS,
        )
        self.ends: dict[str, JobEnd] = {}

    async def start(self) -> None:
        """Connect and position every partition at its current end."""
        await self.consumer.start()
        partitions = [
            TopicPartition(t, p)
            for t in self.topics
            for p in sorted(self.consumer.partitions_for_topic(t) or await self._partitions(t))
        ]
        self.consumer.assign(partitions)
        # Explicit offsets, resolved now, before anything is produced.
        for tp, offset in (await self.consumer.end_offsets(partitions)).items():
            self.consumer.seek(tp, offset)

    async def _partitions(self, topic: str) -> set[int]:
        await self.consumer._client.force_metadata_update()
        return set(self.consumer.partitions_for_topic(topic) or ())

    async def stop(self) -> None:
        """Disconnect."""
        await self.consumer.stop()

    async def wait(
        self,
        job_ids: Iterable[str],
        *,
        timeout_s: float,
        started: dict[str, float] | None = None,
        on_end: Callable[[JobEnd], None] | None = None,
        should_abort: Callable[[], str | None] | None = None,
    ) -> dict[str, JobEnd]:
        """Wait until every job in ``job_ids`` ended or ``timeout_s`` passed.

        ``started`` maps job ids to the ``time.monotonic()`` of their upload, for
        per-job seconds; ``on_end`` is called once per ended job; ``should_abort``
        returns a reason to stop waiting early (e.g. a service died).
        """
        wanted = set(job_ids)
        deadline = time.monotonic() + timeout_s
        while not wanted <= self.ends.keys() and time.monotonic() < deadline:
            if should_abort is not None and (why := should_abort()):
                raise RuntimeError(why)
            batch = await self.consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    self._take(record.value, wanted, started, on_end)
            await asyncio.sleep(0)
        return {j: self.ends[j] for j in wanted if j in self.ends}

    def _take(
        self,
        value: bytes | None,
        wanted: set[str],
        started: dict[str, float] | None,
        on_end: Callable[[JobEnd], None] | None,
    ) -> None:
        try:
            event = decode(value or b"")
        except WireFormatError:
            return
        job_id = getattr(event, "job_id", None)
        if job_id not in wanted or job_id in self.ends:
            return
        end = JobEnd(job_id)
        if isinstance(event, CatalogedV1):
            end.cataloged = event
        elif isinstance(event, DeadLetterV1):
            end.dead_letter = event
        else:
            return
        if started and job_id in started:
            end.seconds = time.monotonic() - started[job_id]
        self.ends[job_id] = end
        if on_end is not None:
            on_end(end)
