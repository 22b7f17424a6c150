"""What a stage hands the runtime: one :class:`Route` per consumed topic.

A handler is a plain async function from one decoded event to the events it causes
(:class:`Emit`); it may read and write the stage's tables. It never sees Kafka: the
runtime decodes, retries, dead-letters, sends, persists and commits around it::

    async def plan(event: ValidatedV1) -> list[Emit]:
        return [Emit("variant-requested", r) for r in planner.plan(event)]

    handlers = {"validated": Route.each(plan), "variant-requested": Route.batched(...)}

A batched route's ``prepare`` receives the values waiting together (up to
``max_records`` within ``window_s``) and returns the per-event handler that shares
work between them (one decode per source image); each event is still retried,
dead-lettered and committed on its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from darkroom_schemas import WireRecord

Handler = Callable[[Any], Awaitable[Sequence["Emit"]]]
"""One event in, the events it causes out. Raises to be retried (retriable errors) or
dead-lettered (anything else)."""

Prepare = Callable[[Sequence[Any]], Awaitable[Handler]]
"""A batch of events in, the handler each of them then goes through. Must not raise."""


@dataclass(frozen=True, slots=True)
class Emit:
    """One event a handler wants sent.

    Attributes:
        topic: a registry name, one of the route's declared ``emits``.
        value: the event.
        key: the message key; default the value's field the topic declares as its key.
    """

    topic: str
    value: WireRecord
    key: bytes | None = None


@dataclass(frozen=True, slots=True)
class Batching:
    """How a batched route takes its events: up to ``max_records`` within ``window_s`` seconds."""

    max_records: int
    window_s: float


@dataclass(frozen=True, slots=True)
class Route:
    """How a stage handles one consumed topic.

    Use :meth:`each` or :meth:`batched`.

    Attributes:
        handle: the per-event handler (plain routes).
        prepare: builds the per-event handler of a batch (batched routes).
        batching: the batch bounds (batched routes).
        lane: routes with the same lane run one event at a time, in the order they
            were fetched (default: the topic's own lane). Routes that write the same
            table must share a lane.
        around: an async context manager factory entered around each event (or batch),
            e.g. a scheduler that lets a replay lane run only while live is idle.
    """

    handle: Handler | None = None
    prepare: Prepare | None = None
    batching: Batching | None = None
    lane: str | None = None
    around: Callable[[], AbstractAsyncContextManager[Any]] | None = None

    @classmethod
    def each(
        cls,
        handle: Handler,
        *,
        lane: str | None = None,
        around: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
    ) -> Route:
        """A route that handles one event at a time."""
        return cls(handle=handle, lane=lane, around=around)

    @classmethod
    def batched(
        cls,
        prepare: Prepare,
        *,
        max_records: int,
        window_s: float,
        around: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
    ) -> Route:
        """A route that takes the events waiting together (alone in its lane).

        Raises:
            ValueError: ``max_records`` < 1 or ``window_s`` < 0.
        """
        if max_records < 1 or window_s < 0:
            raise ValueError("a batch takes at least one record within a window of >= 0 s")
        return cls(prepare=prepare, batching=Batching(max_records, window_s), around=around)
