"""Example events: one fully populated instance of every schema, for docs and tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from darkroom_schemas.base import WireRecord
from darkroom_schemas.events import (
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

IDS: dict[str, str] = {
    "job_id": "job-1",
    "gallery_id": "gal-1",
    "image_id": "img-1",
    "correlation_id": "corr-1",
}
SHA: str = "ab" * 32


def example_events() -> list[WireRecord]:
    """Return one fully populated instance of every wire model (both ``validated`` outcomes)."""
    return [
        UploadedV1(
            **IDS,
            object_key="originals/gal-1/img-1/IMG_1.CR2",
            filename="IMG_1.CR2",
            size_bytes=25_000_000,
            content_type="image/x-canon-cr2",
            profile="default",
        ),
        ValidatedV1(
            **IDS,
            accepted=True,
            object_key="originals/gal-1/img-1/IMG_1.CR2",
            filename="IMG_1.CR2",
            sha256=SHA,
            is_raw=True,
            probe=ProbeInfo(
                format="cr2",
                mime_type="image/x-canon-cr2",
                width=5472,
                height=3648,
                pixels=5472 * 3648,
                bit_depth=14,
                orientation=6,
            ),
            metadata=ImageMetadata(
                make="Canon",
                model="EOS 5D",
                gps_latitude=39.1,
                gps_longitude=-120.1,
                gps_altitude=-3.5,
                iso=100,
                exposure_time="1/250",
                exposure_seconds=0.004,
                warnings=["no LensModel"],
            ),
            derived_from=None,
        ),
        ValidatedV1(
            **IDS,
            accepted=False,
            object_key="o/k",
            filename="x.jpg",
            reason_code="truncated",
            reason_message="The JPEG ends before its end-of-image marker.",
        ),
        VariantRequestedV1(
            **IDS,
            variant="thumb",
            spec_hash="0123456789abcdef",
            spec_json='{"name":"thumb"}',
            profile="default",
            variant_count=7,
            source_key="masters/img-1.jpg",
            source_sha256=SHA,
            artist="Ada",
        ),
        VariantDoneV1(
            **IDS,
            variant="thumb",
            spec_hash="0123456789abcdef",
            status="done",
            object_key="variants/img-1/thumb-0123456789abcdef.jpg",
            format="jpeg",
            width=300,
            height=300,
            bytes=12345,
            duration_ms=12.5,
            thumbhash="1QcSHQRnh493V4dIh4eXh1h4kJUI",
            dominant_colour="#336699",
            provenance={"libvips": "8.18.0"},
        ),
        VariantDoneV1(
            **IDS,
            variant="large_avif",
            spec_hash="fedcba9876543210",
            status="failed",
            reason_code="encode_failed",
            reason_message="AVIF encoder ran out of memory.",
        ),
        CatalogedV1(
            **IDS,
            status="complete",
            variants=[
                VariantSummary(
                    name="thumb",
                    spec_hash="0123456789abcdef",
                    object_key="variants/x.jpg",
                    format="jpeg",
                    width=300,
                    height=300,
                    bytes=1,
                )
            ],
            completed_at=datetime.now(UTC),
        ),
        DeadLetterV1(
            event_id=str(uuid.uuid4()),
            occurred_at=datetime.now(UTC),
            **IDS,
            stage="ingest",
            source_topic="darkroom.uploaded",
            source_partition=3,
            source_offset=42,
            key=b"img-1",
            payload=b"\x00\x01garbage",
            error_class="SchemaError",
            reason_code="schema_error",
            error_message="bad bytes",
            attempts=1,
            retriable=False,
        ),
        ImageDeletedV1(**IDS, requested_by="admin"),
        GallerySettingsV1(
            gallery_id="gal-1",
            processing_provider="imagen",
            processing_mode="manual",
            profile="default",
            max_concurrent_jobs=4,
        ),
    ]
