"""Fields every Darkroom event carries, and the small records events share."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
"""A timezone-aware timestamp, normalised to UTC (Avro ``timestamp-micros``)."""

Identifier = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
]
"""An id safe inside an object key: 1–128 of ``[A-Za-z0-9_.-]``, not starting with ``.``/``-``/``_``."""


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class Record(BaseModel):
    """Base of every schema model: frozen, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class WireRecord(Record):
    """A top-level message value with its own committed schema.

    Subclasses set ``event_type`` (the schema name's stem, e.g. ``uploaded``)
    and pin ``schema_version`` with a ``Literal`` default.
    """

    event_type: ClassVar[str]
    avro_namespace: ClassVar[str] = "io.darkroom.events"

    @classmethod
    def schema_name(cls) -> str:
        """Return ``<event_type>.v<version>``, the key of this schema in the schema-id map."""
        version = cls.model_fields["schema_version"].default
        return f"{cls.event_type}.v{version}"


class Event(WireRecord):
    """The envelope fields of every pipeline event.

    Events are keyed by ``image_id`` on every topic so all events of one image
    stay ordered on one partition.
    """

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Unique per event.")
    schema_version: int = Field(description="Version of this event's schema.")
    occurred_at: UtcDatetime = Field(default_factory=utcnow, description="When it happened, UTC.")
    job_id: Identifier = Field(description="The processing job this event belongs to.")
    gallery_id: Identifier = Field(description="The gallery the image belongs to.")
    image_id: Identifier = Field(description="The image; the Kafka message key.")
    correlation_id: str = Field(
        min_length=1, max_length=128, description="Ties every event of one upload together."
    )
