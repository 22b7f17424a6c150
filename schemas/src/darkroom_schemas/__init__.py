"""Darkroom event schemas (pydantic v2 + committed Avro) and the topic registry.

Import events from here::

    from darkroom_schemas import UploadedV1, encode, decode
"""

from darkroom_schemas.base import Event, Record, WireRecord, utcnow
from darkroom_schemas.events import (
    EVENT_MODELS,
    CatalogedV1,
    DeadLetterV1,
    GallerySettingsV1,
    ImageDeletedV1,
    ImageMetadata,
    ProbeInfo,
    UploadedV1,
    ValidatedV1,
    VariantDoneV1,
    VariantRequestedV1,
    VariantSummary,
)
from darkroom_schemas.topics import STAGES, TOPICS, Stage, TopicSpec, stage, topics_for_stage
from darkroom_schemas.wire import WireFormatError, decode, encode

__all__ = [
    "EVENT_MODELS",
    "STAGES",
    "TOPICS",
    "CatalogedV1",
    "DeadLetterV1",
    "Event",
    "GallerySettingsV1",
    "ImageDeletedV1",
    "ImageMetadata",
    "ProbeInfo",
    "Record",
    "Stage",
    "TopicSpec",
    "UploadedV1",
    "ValidatedV1",
    "VariantDoneV1",
    "VariantRequestedV1",
    "VariantSummary",
    "WireFormatError",
    "WireRecord",
    "decode",
    "encode",
    "stage",
    "topics_for_stage",
    "utcnow",
]
