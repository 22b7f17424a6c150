"""One event through its handler, so that one bad event never stops a route.

:meth:`RecordRunner.process`

1. sends an undecodable value straight to the stage's dead-letter topic;
2. binds job_id / gallery_id / image_id to the logs;
3. awaits the handler, retrying retriable errors a bounded number of times
   with exponential backoff (:mod:`darkroom_common.retry`); each attempt starts
   from the tables as they were before the event (:class:`~.tables.RecordScope`);
4. sends the handler's events and waits until the broker acknowledged every one;
   an event to a topic the route does not declare is refused (``undeclared_emit``);
5. on a permanent error, or once retries are exhausted, sends a
   :class:`DeadLetterV1` with the original payload, the error class, reason
   code, attempt count and source topic/partition/offset, and moves on.

It raises only when even the dead letter could not be sent; the lane then tries the
event again later and never moves past it. Handlers must be idempotent: a
redelivered event runs them again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from darkroom_common.errors import BrokerUnavailable, DarkroomError, PermanentError
from darkroom_common.logging import log_context
from darkroom_common.metrics import Metrics
from darkroom_common.producer import KafkaEventProducer
from darkroom_common.retry import is_retriable, retry_async
from darkroom_common.settings import DarkroomSettings
from darkroom_runtime.routes import Emit, Handler
from darkroom_runtime.tables import RecordScope
from darkroom_schemas import DeadLetterV1, Event, WireFormatError, decode, encode, utcnow
from darkroom_schemas.topics import Stage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UndecodableEvent:
    """A message value that is not a Darkroom event.

    Attributes:
        payload: the message value, byte for byte.
        error: why it could not be decoded (one sentence).
    """

    payload: bytes
    error: str


def decode_value(payload: bytes | None) -> Any:
    """Decode a message value (Confluent-framed Avro); never raises.

    Returns:
        The event, or an :class:`UndecodableEvent` carrying the bytes and the reason.
    """
    try:
        return decode(payload or b"")
    except WireFormatError as exc:
        return UndecodableEvent(payload=bytes(payload or b""), error=str(exc))


class UndeclaredEmit(PermanentError):
    """A handler tried to send to a topic its route does not declare in the registry."""

    default_reason = "undeclared_emit"


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where an input message came from: enough to find, dead-letter and requeue it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    payload: bytes


class RecordRunner:
    """Retries, dead letters, logging context and metrics around a stage's handlers.

    Args:
        stage: the registry stage (its name labels the metrics; its DLQ is used).
        settings: topic prefix and retry bounds.
        producer: sends the handlers' events and the dead letters.
        metrics: where to count events, retries, failures and dead letters.
    """

    def __init__(
        self,
        stage: Stage,
        settings: DarkroomSettings,
        producer: KafkaEventProducer,
        metrics: Metrics,
    ) -> None:
        self.stage = stage
        self.settings = settings
        self.producer = producer
        self.metrics = metrics

    async def send(self, emits: Sequence[Emit], allowed: Collection[str]) -> None:
        """Send ``emits`` and wait until the broker acknowledged every one of them.

        Raises:
            UndeclaredEmit: a topic is not in ``allowed`` (nothing was sent).
            BrokerUnavailable: an event was not acknowledged (retriable).
        """
        if undeclared := sorted({e.topic for e in emits} - set(allowed)):
            raise UndeclaredEmit(
                f"the {self.stage.name} route may not send to {', '.join(undeclared)}"
                f" (it declares {', '.join(sorted(allowed)) or 'nothing'})"
            )
        if not emits:
            return
        await self.producer.send_many([(e.topic, e.value, e.key) for e in emits])
        for e in emits:
            self.metrics.events.labels(
                self.stage.name, self.settings.topic(e.topic), "out", "ok"
            ).inc()

    async def process(
        self,
        value: Any,
        source: SourceRef,
        handler: Handler,
        *,
        allowed: Collection[str],
        scope: RecordScope | None = None,
    ) -> bool:
        """Run ``handler`` on ``value``; never raises for a bad event.

        Args:
            allowed: the topics the route may send to.
            scope: the event's table writes; cleared before each attempt, and again
                when the event is dead-lettered (no half-applied state).

        Returns:
            ``True`` when the handler's events were sent, ``False`` when the event went
            to the dead-letter topic.

        Raises:
            BrokerUnavailable: the dead letter itself could not be sent.
        """
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
            if scope is not None:
                scope.clear()
            await self.send(await handler(value), allowed)

        def on_retry(exc: BaseException, n: int) -> None:
            reason = getattr(exc, "reason_code", type(exc).__name__)
            self.metrics.retries.labels(self.stage.name, reason).inc()
            log.warning("retrying after a transient error", extra={"attempt": n, "error": str(exc)})

        with log_context(**_ids(value)):
            try:
                await retry_async(
                    attempt,
                    max_retries=self.settings.max_retries,
                    base_delay_s=self.settings.retry_base_delay_s,
                    max_delay_s=self.settings.retry_max_delay_s,
                    on_retry=on_retry,
                )
            except Exception as exc:
                if scope is not None:
                    scope.clear()
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
        """Send the original payload and the error to this stage's dead-letter topic.

        Raises:
            BrokerUnavailable: the broker did not acknowledge it.
        """
        envelope = DeadLetterV1(
            event_id=str(uuid.uuid4()),
            occurred_at=utcnow(),
            **_ids(value),
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
        topic = self.settings.topic(self.stage.dead_letter)
        future = await self.producer.send_raw(topic, encode(envelope), key=source.key)
        try:
            await future
        except Exception as exc:
            raise BrokerUnavailable(f"could not dead-letter to {topic}: {exc}") from exc
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
