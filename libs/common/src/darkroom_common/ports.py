"""The ports a stage's handlers see: small protocols, built once in each ``app.py``.

Handlers take these and nothing else from the outside world, so a test hands in a
real local part (a filesystem store, a real broker) or a tiny fake at the edge::

    EventProducer      send an event to a registry topic and wait for the broker's ack
    GallerySettings    every gallery's processing settings (one "ready" wait, one error)
    ObjectStore        originals, masters and variants (darkroom_common.storage)
    Metrics            the Prometheus families (darkroom_common.metrics)
    Clock              wall-clock and monotonic time

None of them imports Kafka: implementations live in
:mod:`darkroom_common.producer`, :mod:`darkroom_common.gallery_settings` and
:class:`SystemClock` here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from darkroom_common.errors import TransientError
from darkroom_common.metrics import Metrics
from darkroom_common.storage import ObjectStore
from darkroom_schemas import GallerySettingsV1, WireRecord


@runtime_checkable
class EventProducer(Protocol):
    """Sends events to registry topics, keyed by each topic's declared key field."""

    async def send(self, topic: str, value: WireRecord, *, key: bytes | None = None) -> None:
        """Send ``value`` to registry topic ``topic`` and wait until the broker acknowledged it.

        Args:
            topic: a registry name (``uploaded``), not the prefixed broker name.
            key: the message key; default the value's field named by the topic's
                :attr:`~darkroom_schemas.topics.TopicSpec.key`.

        Raises:
            BrokerUnavailable: the broker did not acknowledge it (retriable).
            ConfigurationError: ``topic`` is not one this producer may write.
        """
        ...


class GallerySettingsUnavailable(TransientError):
    """The gallery-settings topic was not read to its end in time; retrying may help."""

    default_reason = "settings_unavailable"


@runtime_checkable
class GallerySettings(Protocol):
    """Every gallery's processing settings (the compacted ``gallery-settings`` topic)."""

    async def get(self, gallery_id: str) -> GallerySettingsV1:
        """Return the gallery's settings (the defaults when it has none).

        Waits until the topic was read up to the end it had when following began.

        Raises:
            GallerySettingsUnavailable: that did not happen within the configured wait.
        """
        ...


@runtime_checkable
class Clock(Protocol):
    """Where handlers read the time."""

    def now(self) -> datetime:
        """Return the current UTC time (timezone-aware)."""
        ...

    def monotonic(self) -> float:
        """Return a monotonic clock reading in seconds (for durations only)."""
        ...


class SystemClock:
    """The machine's clocks: :func:`datetime.now` in UTC and :func:`time.monotonic`."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Return :func:`time.monotonic`."""
        return time.monotonic()


@dataclass(frozen=True, slots=True)
class Ports:
    """Everything a stage's handlers may touch outside their arguments.

    Attributes:
        producer: sends events (and commands) to registry topics.
        gallery_settings: the galleries' settings.
        store: the object store.
        metrics: the Prometheus families to count in.
        clock: the time.
    """

    producer: EventProducer
    gallery_settings: GallerySettings
    store: ObjectStore
    metrics: Metrics
    clock: Clock


__all__ = [
    "Clock",
    "EventProducer",
    "GallerySettings",
    "GallerySettingsUnavailable",
    "ObjectStore",
    "Ports",
    "SystemClock",
]
