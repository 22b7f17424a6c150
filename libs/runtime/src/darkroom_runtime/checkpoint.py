"""The one owner of offset commits.

A lane calls :meth:`Checkpoint.done` for an event only after every step that event
needed finished, in this order: its handler's events were acknowledged by the broker,
its table writes were acknowledged in the changelog, and they were applied to the
local store (or it went to the dead-letter topic, acknowledged too). Events of one
partition are handled in order, so the committable position of a partition is always
the last done offset + 1: there are no gaps to fill and nothing is committed ahead
of the work.

Commits are throttled (every ``interval_s``), and forced when partitions are revoked
and when the worker stops. A failed commit (a rebalance, the broker) is only logged:
the events after the last commit are handled again by whoever owns the partition
next, which handlers are written for (at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

log = logging.getLogger(__name__)


class Checkpoint:
    """Tracks the done offsets of the assigned partitions and commits them.

    Args:
        consumer: the stage's group consumer.
        interval_s: at most one commit per interval (seconds), unless forced.
        on_commit: called with the number of partitions committed, for metrics.
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        *,
        interval_s: float = 1.0,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self.consumer = consumer
        self.interval_s = interval_s
        self.on_commit = on_commit
        self._done: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._lock = asyncio.Lock()

    def done(self, tp: TopicPartition, offset: int) -> None:
        """Record that the event at ``offset`` of ``tp`` is completely handled."""
        if offset > self._done.get(tp, -1):
            self._done[tp] = offset

    def pending(self) -> dict[TopicPartition, int]:
        """The commit positions not committed yet: ``{tp: last done offset + 1}``."""
        return {
            tp: offset + 1
            for tp, offset in self._done.items()
            if offset + 1 > self._committed.get(tp, -1)
        }

    async def commit(self, tps: Iterable[TopicPartition] | None = None) -> bool:
        """Commit the done positions (of ``tps`` only, when given); ``False`` if it failed."""
        async with self._lock:
            wanted = set(tps) if tps is not None else None
            offsets = {
                tp: position
                for tp, position in self.pending().items()
                if wanted is None or tp in wanted
            }
            if not offsets:
                return True
            try:
                await self.consumer.commit(
                    {tp: OffsetAndMetadata(position, "") for tp, position in offsets.items()}
                )
            except KafkaError as exc:
                log.warning(
                    "offset commit failed; the events since the last commit will be handled again",
                    extra={"error": f"{type(exc).__name__}: {exc}", "partitions": len(offsets)},
                )
                return False
            self._committed.update(offsets)
            if self.on_commit is not None:
                self.on_commit(len(offsets))
            return True

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Drop the bookkeeping of revoked partitions (after their last commit)."""
        for tp in tps:
            self._done.pop(tp, None)
            self._committed.pop(tp, None)

    async def run(self) -> None:
        """Commit every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(self.interval_s)
            await self.commit()
