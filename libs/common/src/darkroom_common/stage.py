"""Run one stage's handler on each event so that one bad event never stops the agent.

faust-streaming acks and drops an event whose handler raises (and an agent
with ``concurrency > 1`` can lose messages), so every agent hands each event
to :meth:`StageRunner.process`, which

1. sends an undecodable value straight to the stage's dead-letter topic;
2. binds job_id / gallery_id / image_id to the logs;
3. awaits the handler, retrying retriable errors a bounded number of times
   with exponential backoff (:mod:`darkroom_common.retry`);
4. sends the handler's output events and waits until the broker acknowledged
   them, before the offset of the input can be committed (at-least-once);
5. on a permanent error, or once retries are exhausted, sends a
   :class:`DeadLetterV1` with the original payload, the error class, reason
   code, attempt count and source topic/partition/offset — and moves on.

Handlers are plain async functions from an event to the events it causes;
they must be idempotent, since a redelivered event runs them again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust

from darkroom_common.codec import UndecodableEvent
from darkroom_common.errors import DarkroomError
from darkroom_common.logging import log_context
from darkroom_common.metrics import Metrics
from darkroom_common.retry import is_retriable, retry_async
from darkroom_common.settings import DarkroomSettings
from darkroom_schemas import DeadLetterV1, Event, WireRecord, utcnow
from darkroom_schemas.topics import stage as registry_stage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Emit:
    """One event a handler wants sent: ``value`` to registry topic ``topic``, keyed by image_id."""

    topic: str
    value: WireRecord

    @property
    def key(self) -> bytes:
        """The message key: the event's ``image_id`` (every topic is keyed by it)."""
        return str(getattr(self.value, "image_id", "")).encode()


Handler = Callable[[Any], Awaitable[Sequence[Emit]]]


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where an input message came from: enough to find, dead-letter and requeue it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    payload: bytes


class StageRunner:
    """Wraps a stage's handlers with retries, dead-lettering, logging context and metrics.

    Args:
        app: the stage's Faust app (used to resolve topics).
        settings: the stage's settings (topic prefix, retry bounds).
        stage_name: a stage of the registry, e.g. ``"ingest"``.
        metrics: where to count events, failures and dead letters.
    """

    def __init__(
        self,
        app: faust.App,
        settings: DarkroomSettings,
        stage_name: str,
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.stage = registry_stage(stage_name)
        self.metrics = metrics if metrics is not None else Metrics.default()
        self._topics: dict[str, faust.types.TopicT] = {}

    def topic(self, name: str) -> faust.types.TopicT:
        """Return the Faust topic for registry topic ``name`` (created lazily, cached)."""
        if name not in self._topics:
            self._topics[name] = self.app.topic(self.settings.topic(name), internal=False)
        return self._topics[name]

    async def send(self, emits: Sequence[Emit]) -> None:
        """Send ``emits`` and wait until the broker acknowledged every one of them."""
        futures = [await self.topic(e.topic).send(key=e.key, value=e.value) for e in emits]
        for fut in futures:
            await fut
        for e in emits:
            self.metrics.events.labels(
                self.stage.name, self.settings.topic(e.topic), "out", "ok"
            ).inc()

    async def process(self, event: faust.types.EventT, handler: Handler) -> bool:
        """Handle one Faust event; never raises for a bad event.

        Returns:
            ``True`` when the handler's output was sent, ``False`` when the event
            went to the dead-letter topic.
        """
        message = event.message
        source = SourceRef(
            message.topic, message.partition, message.offset, message.key, message.value or b""
        )
        return await self.process_value(event.value, source, handler)

    async def process_value(self, value: Any, source: SourceRef, handler: Handler) -> bool:
        """Like :meth:`process`, for a value already taken from its message."""
        started = time.perf_counter()
        labels = (self.stage.name, source.topic, "in")
        if isinstance(value, UndecodableEvent):
            await self.dead_letter(
                source,
                None,
                "SchemaError",
                "schema_error",
                value.error,
                attempts=1,
                retriable=False,
            )
            self.metrics.events.labels(*labels, "dead_letter").inc()
            return False
        attempts = 0

        async def attempt() -> None:
            nonlocal attempts
            attempts += 1
            await self.send(await handler(value))

        def on_retry(exc: BaseException, n: int) -> None:
            reason = getattr(exc, "reason_code", type(exc).__name__)
            self.metrics.retries.labels(self.stage.name, reason).inc()
            log.warning("retrying after a transient error", extra={"attempt": n, "error": str(exc)})

        ids = _ids(value)
        with log_context(**ids):
            try:
                await retry_async(
                    attempt,
                    max_retries=self.settings.max_retries,
                    base_delay_s=self.settings.retry_base_delay_s,
                    max_delay_s=self.settings.retry_max_delay_s,
                    on_retry=on_retry,
                )
            except Exception as exc:
                reason = exc.reason_code if isinstance(exc, DarkroomError) else "unhandled_error"
                log.exception(
                    "giving up on an event", extra={"reason": reason, "attempts": attempts}
                )
                await self.dead_letter(
                    source,
                    value,
                    type(exc).__name__,
                    reason,
                    str(exc),
                    attempts=max(attempts, 1),
                    retriable=is_retriable(exc),
                )
                self.metrics.failures.labels(self.stage.name, self.stage.name, reason).inc()
                self.metrics.events.labels(*labels, "dead_letter").inc()
                return False
            finally:
                self.metrics.stage_seconds.labels(self.stage.name, self.stage.name).observe(
                    time.perf_counter() - started
                )
        self.metrics.events.labels(*labels, "ok").inc()
        return True

    async def dead_letter(
        self,
        source: SourceRef,
        value: Any,
        error_class: str,
        reason_code: str,
        message: str,
        *,
        attempts: int,
        retriable: bool,
    ) -> None:
        """Send the original payload and the error to this stage's dead-letter topic."""
        ids = _ids(value)
        envelope = DeadLetterV1(
            event_id=str(uuid.uuid4()),
            occurred_at=utcnow(),
            **ids,
            stage=self.stage.name,
            source_topic=source.topic,
            source_partition=source.partition,
            source_offset=source.offset,
            key=source.key,
            payload=source.payload,
            error_class=error_class,
            reason_code=reason_code,
            error_message=message[:4000],
            attempts=attempts,
            retriable=retriable,
        )
        topic = self.topic(self.stage.dead_letter)
        await (await topic.send(key=source.key, value=envelope))
        self.metrics.dead_letters.labels(self.stage.name, reason_code).inc()


def _ids(value: Any) -> dict[str, str | None]:
    if isinstance(value, Event):
        return {
            "job_id": value.job_id,
            "gallery_id": value.gallery_id,
            "image_id": value.image_id,
            "correlation_id": value.correlation_id,
        }
    return {"job_id": None, "gallery_id": None, "image_id": None, "correlation_id": None}
