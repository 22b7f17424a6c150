"""Lanes: where a stage's events are handled, one at a time (or one batch at a time).

The fetch loop puts each fetched record into the lane of its topic; a lane's task
takes them in order and, for each event:

1. decodes it and runs its route's handler through the :class:`~.runner.RecordRunner`
   (retries; the handler's events sent and acknowledged; or a dead letter);
2. sends the event's table writes to the changelogs, waits for the acks, and applies
   them to the local stores (:meth:`Lane.persist`, retried until it succeeds or the
   partition is revoked);
3. only then marks the offset done in the :class:`~.checkpoint.Checkpoint`.

A step that fails beyond the runner's own retries (the broker is down, even the
dead letter cannot be sent) is tried again with backoff; the lane never moves past
an event it has not finished, and never awaits anything its own consumer could hold
up (the producer is a separate client). When the partition of the event in hand is
revoked, the lane abandons it uncommitted; its next owner handles it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import ConsumerRecord, TopicPartition

from darkroom_common.producer import KafkaEventProducer
from darkroom_runtime.checkpoint import Checkpoint
from darkroom_runtime.routes import Handler, Route
from darkroom_runtime.runner import RecordRunner, SourceRef, UndecodableEvent, decode_value
from darkroom_runtime.tables import RecordScope
from darkroom_schemas.topics import RouteSpec

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


class Abandoned(Exception):
    """The event's partition was revoked while it was being handled; it stays uncommitted."""


class LaneHost(Protocol):
    """What a lane needs from its worker."""

    runner: RecordRunner
    checkpoint: Checkpoint
    producer: KafkaEventProducer

    def owns(self, tp: TopicPartition, generation: int) -> bool:
        """Whether ``tp`` is still assigned in the assignment ``generation`` it was fetched in."""
        ...

    def backlog_changed(self, lane: Lane) -> None:
        """Pause or resume the lane's partitions for its backlog."""
        ...


@dataclass(frozen=True, slots=True)
class Item:
    """One fetched record waiting in a lane."""

    generation: int
    tp: TopicPartition
    record: ConsumerRecord[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Bound:
    """A route with its registry declaration."""

    route: Route
    spec: RouteSpec


class Lane:
    """One task handling the events of one or more routes in fetch order.

    Args:
        name: the lane name (a table's writer lane, or the topic of a plain route).
        routes: broker-side topic → its route and registry declaration.
        host: the worker.
        high_water: backlog at which the lane's partitions are paused (records).
    """

    def __init__(
        self, name: str, routes: dict[str, Bound], host: LaneHost, *, high_water: int = 500
    ) -> None:
        self.name = name
        self.routes = routes
        self.host = host
        self.high_water = high_water
        self.low_water = max(1, high_water // 4)
        self._queue: deque[Item] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._current: asyncio.Task[None] | None = None
        self._current_tps: set[TopicPartition] = set()
        self._finished: set[tuple[TopicPartition, int]] = set()
        batched = [b for b in routes.values() if b.route.batching is not None]
        if batched and len(routes) > 1:
            raise ValueError(f"lane {name}: a batched route must be alone in its lane")

    @property
    def topics(self) -> list[str]:
        """The broker-side topics this lane handles."""
        return list(self.routes)

    @property
    def backlog(self) -> int:
        """How many fetched records wait in this lane."""
        return len(self._queue)

    def put(self, generation: int, records: Iterable[ConsumerRecord[bytes, bytes]]) -> None:
        """Queue fetched records, each partition's in offset order."""
        for record in records:
            self._queue.append(
                Item(generation, TopicPartition(record.topic, record.partition), record)
            )
        self._wakeup.set()
        self.host.backlog_changed(self)

    def drop(self, tps: Iterable[TopicPartition]) -> int:
        """Forget the queued records of ``tps`` (revoked); return how many."""
        revoked = set(tps)
        kept = [item for item in self._queue if item.tp not in revoked]
        dropped = len(self._queue) - len(kept)
        self._queue = deque(kept)
        return dropped

    def busy_with(self, tps: Iterable[TopicPartition]) -> bool:
        """Whether the event (or batch) in hand comes from one of ``tps``."""
        return bool(self._current_tps & set(tps))

    async def settle(self, tps: Iterable[TopicPartition], timeout_s: float) -> None:
        """Wait until the lane holds nothing of ``tps`` in hand; cancel it after ``timeout_s``."""
        current = self._current
        if current is None or not self.busy_with(tps):
            return
        done, _ = await asyncio.wait({current}, timeout=timeout_s)
        if not done:
            log.warning(
                "cancelling an event whose partition was revoked; its next owner handles it",
                extra={"lane": self.name},
            )
            current.cancel()
            await asyncio.wait({current})

    def start(self) -> None:
        """Start the lane's task."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"lane:{self.name}")

    async def stop(self, grace_s: float) -> None:
        """Let the event in hand finish (up to ``grace_s``), then stop; queued ones are dropped."""
        task, self._task = self._task, None
        self._queue.clear()
        if task is None:
            return
        current = self._current
        if current is not None and not current.done():
            await asyncio.wait({current}, timeout=grace_s)
            current.cancel()
        task.cancel()
        await asyncio.gather(task, *([current] if current else []), return_exceptions=True)

    # ---- the loop ------------------------------------------------------------

    async def _next(self) -> Item:
        while not self._queue:
            self._wakeup.clear()
            await self._wakeup.wait()
        item = self._queue.popleft()
        if len(self._queue) < self.low_water:
            self.host.backlog_changed(self)
        return item

    async def _take_batch(self, first: Item, max_records: int, window_s: float) -> list[Item]:
        items = [first]
        deadline = time.monotonic() + window_s
        while len(items) < max_records:
            if self._queue:
                items.append(self._queue.popleft())
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                break
        self.host.backlog_changed(self)
        return items

    async def _loop(self) -> None:
        while True:
            item = await self._next()
            bound = self.routes[item.tp.topic]
            batching = bound.route.batching
            if batching is not None:
                items = await self._take_batch(item, batching.max_records, batching.window_s)
            else:
                items = [item]
            items = [i for i in items if self.host.owns(i.tp, i.generation)]
            if not items:
                continue
            self._current_tps = {i.tp for i in items}
            self._current = asyncio.create_task(self._handle(bound, items))
            try:
                await asyncio.wait({self._current})
                if not self._current.cancelled() and (exc := self._current.exception()):
                    # Never move past an event that is not done: take the unfinished ones
                    # again, in order, after a pause (a later offset must not be
                    # committed over an earlier one).
                    log.error("a lane step failed unexpectedly; trying it again", exc_info=exc)
                    unfinished = [i for i in items if (i.tp, i.record.offset) not in self._finished]
                    self._queue.extendleft(reversed(unfinished))
                    await asyncio.sleep(1.0)
            finally:
                self._current = None
                self._current_tps = set()
                self._finished = set()

    async def _handle(self, bound: Bound, items: Sequence[Item]) -> None:
        around = bound.route.around
        if around is None:
            await self._handle_items(bound, items)
            return
        async with around():
            await self._handle_items(bound, items)

    async def _handle_items(self, bound: Bound, items: Sequence[Item]) -> None:
        values = [decode_value(i.record.value) for i in items]
        handler: Handler
        if bound.route.prepare is not None:
            events = [v for v in values if not isinstance(v, UndecodableEvent)]
            try:
                handler = await bound.route.prepare(events)
            except Exception as exc:  # prepare must not raise; fail each event with the cause
                log.exception("preparing a batch failed")
                handler = _failing(exc)
        else:
            assert bound.route.handle is not None
            handler = bound.route.handle
        for item, value in zip(items, values, strict=True):
            try:
                await self._handle_one(item, value, handler, bound.spec)
            except Abandoned:
                continue

    async def _handle_one(self, item: Item, value: Any, handler: Handler, spec: RouteSpec) -> None:
        record = item.record
        source = SourceRef(
            record.topic, record.partition, record.offset, record.key, record.value or b""
        )
        scope = RecordScope(item.tp.partition, self.name)
        delay = 0.5
        while True:
            if not self.host.owns(item.tp, item.generation):
                raise Abandoned()
            try:
                with scope.active():
                    handled = await self.host.runner.process(
                        value, source, handler, allowed=spec.emits, scope=scope
                    )
                if handled:
                    await self.persist(item, scope)
                break
            except Abandoned:
                raise
            except Exception as exc:
                log.warning(
                    "could not finish an event; trying it again",
                    extra={
                        "lane": self.name,
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "error": f"{type(exc).__name__}: {exc}",
                        "retry_in_s": delay,
                    },
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
        self.host.checkpoint.done(item.tp, record.offset)
        self._finished.add((item.tp, record.offset))

    async def persist(self, item: Item, scope: RecordScope) -> None:
        """Send ``scope``'s table writes to the changelogs, wait for the acks, apply them locally.

        Retried with backoff until it succeeds.

        Raises:
            Abandoned: the event's partition was revoked in the meantime.
        """
        if not scope.writes:
            return
        delay = 0.2
        while True:
            if not self.host.owns(item.tp, item.generation):
                raise Abandoned()
            try:
                await write_through(self.host.producer, scope)
                return
            except Exception as exc:
                log.warning(
                    "changelog write failed; trying again",
                    extra={"lane": self.name, "error": f"{type(exc).__name__}: {exc}"},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)


async def write_through(producer: KafkaEventProducer, scope: RecordScope) -> None:
    """Send ``scope``'s table writes to their changelogs, wait for every ack, apply them locally.

    The writes reach the local store (with the changelog offset they reached) only once
    all were acknowledged; on an error nothing is applied and the scope's writes stay
    pending, so the caller may call again.

    Raises:
        KafkaError, BrokerUnavailable: a send failed.
    """
    changes = [(table, table.pending(scope)) for table in scope.writes]
    changes = [(table, c) for table, c in changes if c]
    futures = [
        [
            await producer.send_raw(table.changelog, value, key=key, partition=scope.partition)
            for key, value in table_changes
        ]
        for table, table_changes in changes
    ]
    acks = [await asyncio.gather(*fs) for fs in futures]
    for (table, table_changes), metas in zip(changes, acks, strict=True):
        table.persist(scope.partition, table_changes, max(m.offset for m in metas))


def _failing(exc: Exception) -> Handler:
    async def handler(_: Any) -> Sequence[Any]:
        raise exc

    return handler
