"""Pipeline events, one pydantic model per event and version.

The flow (see the README diagram)::

    uploaded → validated → variant-requested → variant-done → cataloged

A developed RAW re-enters the flow as a second ``validated`` event whose
``derived_from`` names the RAW original's object key. Each model has a
committed Avro schema in ``darkroom_schemas/avro/<event>.v<N>.avsc``; the
models are the source of truth for Python code, the ``.avsc`` files for the
wire, and a test keeps the two identical.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from darkroom_schemas.base import Event, Identifier, Record, UtcDatetime, WireRecord, utcnow


class ProbeInfo(Record):
    """What the header probe found (no full decode). Pixel sizes in px."""

    format: str = Field(description="Real format by magic bytes, e.g. 'jpeg', 'cr2'.")
    mime_type: str
    width: int = Field(ge=0)
    height: int = Field(ge=0)
    pixels: int = Field(ge=0)
    frames: int = Field(default=1, ge=1)
    bit_depth: int | None = None
    colour_space: str | None = None
    icc_description: str | None = None
    orientation: int = Field(default=1, ge=1, le=8, description="EXIF Orientation (0x0112).")


class ImageMetadata(Record):
    """EXIF fields a gallery shows, as ExifTool names them (EXIF 2.32 / CIPA DC-008).

    GPS in signed decimal degrees and metres; ``exposure_time`` as a fraction
    string (``"1/250"``) and ``exposure_seconds`` in seconds; focal lengths in mm.
    ``warnings`` records missing or broken metadata (never a failure).
    """

    make: str | None = None
    model: str | None = None
    lens_model: str | None = None
    date_time_original: str | None = Field(
        default=None, description="ISO 8601, with offset if known."
    )
    offset_time_original: str | None = None
    date_time_original_source: str | None = Field(
        default=None,
        description="Where date_time_original came from, as ExifTool group:tag "
        "(EXIF:DateTimeOriginal, EXIF:CreateDate, XMP-photoshop:DateCreated, "
        "IPTC:DateCreated, EXIF:GPSDateStamp+GPSTimeStamp...); null when no date.",
    )
    gps_latitude: float | None = None
    gps_longitude: float | None = None
    gps_altitude: float | None = None
    iso: int | None = None
    f_number: float | None = None
    exposure_time: str | None = None
    exposure_seconds: float | None = None
    focal_length: float | None = None
    focal_length_35mm: float | None = None
    orientation: int | None = None
    flash: int | None = Field(
        default=None, description="EXIF Flash (0x9209) bit field; bit 0 = fired."
    )
    white_balance: str | None = None
    artist: str | None = None
    copyright: str | None = None
    software: str | None = None
    warnings: list[str] = Field(default_factory=list)


class VariantSummary(Record):
    """One rendered variant as the catalog records it. Sizes in px and bytes."""

    name: str
    spec_hash: str
    object_key: str
    format: str
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    bytes: int = Field(ge=0)


class UploadedV1(Event):
    """An original was stored; validation may start. Produced by upload APIs.

    ``object_key`` is where the original's bytes already are in the object store.
    """

    event_type = "uploaded"
    schema_version: Literal[1] = 1
    attempt: int = Field(default=1, ge=1, description="The job attempt this event belongs to.")
    object_key: str = Field(min_length=1, max_length=1024)
    filename: str = Field(min_length=1, max_length=1024, description="The uploader's file name.")
    size_bytes: int = Field(ge=0)
    content_type: str | None = None
    profile: str | None = Field(
        default=None, description="Variant profile; gallery default if unset."
    )
    source: Literal["api", "presigned", "s3-notification", "cli", "replay", "retry", "start"] = (
        Field(
            default="api",
            description="Who sent it; 'retry' re-queues a failed job (attempt + 1), "
            "'start' releases a job held in manual mode.",
        )
    )


class ValidatedV1(Event):
    """The verdict on one upload: accepted with probe and metadata, or rejected with a reason.

    ``derived_from`` is set on the JPEG master a RAW was developed into: it names
    the RAW original's object key, and ``object_key`` the master's.
    """

    event_type = "validated"
    schema_version: Literal[1] = 1
    attempt: int = Field(default=1, ge=1, description="The job attempt this event belongs to.")
    accepted: bool
    object_key: str = Field(min_length=1, max_length=1024)
    filename: str
    reason_code: str | None = None
    reason_message: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    is_raw: bool = False
    probe: ProbeInfo | None = None
    metadata: ImageMetadata | None = None
    profile: str | None = None
    derived_from: str | None = None
    duplicate_of: Identifier | None = Field(
        default=None, description="image_id of an earlier upload with the same bytes."
    )
    provider_job_id: str | None = Field(
        default=None, description="The external RAW provider's job id, when one developed it."
    )


class VariantRequestedV1(Event):
    """Render one variant of one source. One event per variant spec of the profile.

    ``spec_json`` is the canonical JSON of the imaging engine's ``VariantSpec``;
    ``spec_hash`` its stable hash, part of the output key.
    """

    event_type = "variant-requested"
    schema_version: Literal[1] = 1
    attempt: int = Field(default=1, ge=1, description="The job attempt this event belongs to.")
    variant: str = Field(min_length=1, max_length=64)
    spec_hash: str = Field(min_length=8, max_length=64)
    spec_json: str
    profile: str
    variant_count: int = Field(ge=1, description="How many variants the job has in all.")
    source_key: str = Field(min_length=1, max_length=1024)
    source_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    artist: str | None = None
    copyright: str | None = None


class VariantDoneV1(Event):
    """The outcome of one variant request: rendered, or failed with a reason code.

    Sizes in px and bytes; ``duration_ms`` is the render time of this variant;
    ``provenance`` holds engine and library versions, spec hash, source sha256 and
    the decode path.
    """

    event_type = "variant-done"
    schema_version: Literal[1] = 1
    attempt: int = Field(default=1, ge=1, description="The job attempt this event belongs to.")
    variant: str = Field(min_length=1, max_length=64)
    spec_hash: str
    status: Literal["done", "failed"]
    object_key: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    duration_ms: float | None = None
    thumbhash: str | None = None
    dominant_colour: str | None = None
    provenance: dict[str, str] = Field(default_factory=dict)
    reason_code: str | None = None
    reason_message: str | None = None


class CatalogedV1(Event):
    """A job reached a terminal state in the catalog: ``complete`` or ``failed``.

    A complete job carries what the gallery shows for the image: its variants,
    metadata and placeholders (ThumbHash and dominant colour of the thumbnail).
    """

    event_type = "cataloged"
    schema_version: Literal[1] = 1
    status: Literal["complete", "failed"]
    reason_code: str | None = None
    reason_message: str | None = None
    filename: str | None = None
    source_key: str | None = None
    attempts: int = Field(default=1, ge=1)
    variants: list[VariantSummary] = Field(default_factory=list)
    metadata: ImageMetadata | None = None
    thumbhash: str | None = None
    dominant_colour: str | None = None
    duplicate_of: Identifier | None = None
    completed_at: UtcDatetime


class DeadLetterV1(WireRecord):
    """The envelope of an event a stage gave up on, sent to that stage's dead-letter topic.

    ``payload`` is the original message value, byte for byte, so it can be
    requeued; the ids are copied from it when it could be decoded.
    """

    event_type = "dead-letter"

    event_id: str
    schema_version: Literal[1] = 1
    occurred_at: UtcDatetime
    job_id: str | None = None
    gallery_id: str | None = None
    image_id: str | None = None
    correlation_id: str | None = None
    stage: str
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None = None
    payload: bytes
    error_class: str
    reason_code: str
    error_message: str
    attempts: int = Field(ge=1)
    retriable: bool


class ImageDeletedV1(Event):
    """An image is to be removed: from its gallery, and its original, master and variants
    from the object store. Every stage honours it for what it holds.
    """

    event_type = "image-deleted"
    schema_version: Literal[1] = 1
    requested_by: str | None = Field(default=None, description="API key name that asked.")


class GallerySettingsV1(WireRecord):
    """A gallery's processing settings; the latest per gallery_id wins (compacted topic).

    ``processing_mode`` ``manual`` holds new jobs in ``queued`` until started;
    ``max_concurrent_jobs`` bounds the gallery's jobs in processing at once (None:
    unbounded); ``profile`` is the variant profile for uploads that name none.
    """

    event_type = "gallery-settings"
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    schema_version: Literal[1] = 1
    occurred_at: UtcDatetime = Field(default_factory=utcnow)
    gallery_id: Identifier
    correlation_id: str = Field(
        default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=128
    )
    processing_provider: Literal["local", "imagen"] = "local"
    processing_mode: Literal["auto", "manual"] = "auto"
    profile: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    max_concurrent_jobs: int | None = Field(default=None, ge=1, le=10_000)


EVENT_MODELS: tuple[type[Event], ...] = (
    UploadedV1,
    ValidatedV1,
    VariantRequestedV1,
    VariantDoneV1,
    CatalogedV1,
    ImageDeletedV1,
)
"""Every pipeline event model, in flow order."""
