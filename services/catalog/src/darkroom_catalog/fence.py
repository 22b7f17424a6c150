"""One ``cataloged`` per job attempt: the runtime's at-least-once repeat, fenced off.

The runtime sends a handler's events, then its table writes to the changelog, then
commits the input (docs/stage-runtime.md). A catalog worker killed between the first
two acknowledgements leaves a ``cataloged`` on the topic whose job state never reached
the jobs changelog; the next owner of the partition restores the job as it was, handles
the same input again and would send the same ``cataloged`` again (same ``event_id``:
``uuid5`` of job, attempt and status, :func:`darkroom_catalog.jobs.cataloged_event`).

:class:`CatalogedFence` closes that window. ``cataloged`` is keyed by ``image_id``, like
the jobs table and every job topic, so a job's inputs, its changelog records and its
``cataloged`` events share one partition number. Before a partition's records flow
(:meth:`StageApp.on_partition_ready <darkroom_runtime.app.StageApp.on_partition_ready>`,
after the restore), the fence reads:

1. the newest record time ``t`` of that partition of the jobs changelog: any repeat
   was sent after the last changelog write that was acknowledged on the partition
   (the lane handles its events one at a time, and a record's time is its producer's
   clock when it was sent);
2. that partition of ``cataloged`` from ``t - CLOCK_SKEW_S`` (Kafka's offsets for
   times) to its end, remembering every ``event_id``.

A ``cataloged`` the jobs lane or the reconciler is about to send whose ``event_id`` is
remembered is already on the topic, and is not sent again. Suppressing is always
consistent: equal ids mean the same job, attempt and status. An empty changelog
partition means the whole ``cataloged`` partition is read. The window left open is a
worker that keeps running after it lost its partition (a network partition, not a
kill): Kafka transactions with fencing would be needed for that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from darkroom_common.producer import METADATA_MAX_AGE_MS
from darkroom_schemas import CatalogedV1, WireFormatError, decode

CLOCK_SKEW_S = 30.0
"""How far before the newest changelog record the ``cataloged`` partition is read (s).

Covers the clocks of two workers (the one that wrote the changelog record and the one
that sent the repeat) disagreeing by up to this much."""

TAIL_RECORDS = 64
"""How many of a changelog partition's last offsets are read for its newest record time
(compaction may have removed the very last ones)."""

log = logging.getLogger(__name__)


class CatalogedFence:
    """The ``event_id`` of every ``cataloged`` already on the topic, per partition number.

    Args:
        bootstrap: the Kafka cluster.
        changelog: the jobs table's changelog topic (full name).
        cataloged: the ``cataloged`` topic (full name).
        client_id: names the fence's consumers in the broker's logs.
    """

    def __init__(self, bootstrap: str, *, changelog: str, cataloged: str, client_id: str) -> None:
        self.bootstrap = bootstrap
        self.changelog = changelog
        self.cataloged = cataloged
        self.client_id = client_id
        self._sent: dict[int, set[str]] = {}

    def already_sent(self, partition: int, event: CatalogedV1) -> bool:
        """Whether ``event`` (of a job on ``partition``) is already on the topic."""
        return str(event.event_id) in self._sent.get(partition, ())

    async def load(self, partition: int) -> int:
        """Read what partition ``partition`` of ``cataloged`` holds since its jobs' last write.

        Returns:
            How many ``cataloged`` records were read.

        Raises:
            KafkaError, OSError: the cluster could not be read (the runtime retries).
        """
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            client_id=f"{self.client_id}-fence",
            metadata_max_age_ms=METADATA_MAX_AGE_MS,
        )
        await consumer.start()
        try:
            newest = await _newest_time_ms(consumer, TopicPartition(self.changelog, partition))
            tp = TopicPartition(self.cataloged, partition)
            consumer.assign([tp])
            begin = (await consumer.beginning_offsets([tp]))[tp]
            end = (await consumer.end_offsets([tp]))[tp]
            start = begin
            if newest is not None:
                found = await consumer.offsets_for_times(
                    {tp: max(0, newest - int(CLOCK_SKEW_S * 1000))}
                )
                start = found[tp].offset if found.get(tp) is not None else end
            ids: set[str] = set()
            read = 0
            for record in await _read(consumer, tp, start, end):
                read += 1
                with contextlib.suppress(WireFormatError, ValueError):
                    event = decode(record.value or b"")
                    if isinstance(event, CatalogedV1):
                        ids.add(str(event.event_id))
        finally:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(consumer.stop()), 10)
        self._sent[partition] = ids
        log.info(
            "cataloged fence loaded",
            extra={"partition": partition, "from_offset": start, "records": read},
        )
        return read


async def _newest_time_ms(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """The newest record time on ``tp`` (ms since the epoch), ``None`` when it is empty."""
    consumer.assign([tp])
    begin = (await consumer.beginning_offsets([tp]))[tp]
    end = (await consumer.end_offsets([tp]))[tp]
    records = await _read(consumer, tp, max(begin, end - TAIL_RECORDS), end)
    return max((r.timestamp for r in records), default=None)


async def _read(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``tp`` from offset ``start`` up to (not including) ``end``."""
    if start >= end:
        return []
    consumer.seek(tp, start)
    out: list[ConsumerRecord[bytes, bytes]] = []
    while await consumer.position(tp) < end:
        batch = await consumer.getmany(tp, timeout_ms=500, max_records=5000)
        out.extend(r for r in batch.get(tp, []) if r.offset < end)
    return out
