"""Confluent-framed Avro: round trips, and clear errors on bytes that are not events."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from darkroom_schemas import (
    CatalogedV1,
    DeadLetterV1,
    ImageMetadata,
    ProbeInfo,
    UploadedV1,
    ValidatedV1,
    VariantDoneV1,
    VariantRequestedV1,
    VariantSummary,
    WireFormatError,
    decode,
    encode,
)

IDS = {"job_id": "job-1", "gallery_id": "gal-1", "image_id": "img-1", "correlation_id": "corr-1"}
SHA = "ab" * 32


def sample_events():
    """One fully populated instance of every wire model (used here and in the broker test)."""
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
    ]


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: type(e).__name__)
def test_round_trip_preserves_every_field(event):
    data = encode(event)
    assert data[0] == 0
    assert decode(data) == event


def test_timestamps_are_normalised_to_utc():
    local = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    event = UploadedV1(**IDS, object_key="k", filename="f.jpg", size_bytes=1, occurred_at=local)
    assert event.occurred_at.tzinfo == UTC
    assert decode(encode(event)).occurred_at == local


def test_naive_timestamp_is_refused():
    with pytest.raises(ValidationError, match="timezone-aware"):
        UploadedV1(
            **IDS, object_key="k", filename="f.jpg", size_bytes=1, occurred_at=datetime(2026, 1, 1)
        )


@pytest.mark.parametrize("bad_id", ["", "../etc", "a/b", "x" * 129, ".hidden", "sp ace"])
def test_ids_that_could_escape_a_key_prefix_are_refused(bad_id):
    with pytest.raises(ValidationError):
        UploadedV1(**{**IDS, "gallery_id": bad_id}, object_key="k", filename="f.jpg", size_bytes=1)


def test_short_message_is_a_wire_error():
    with pytest.raises(WireFormatError, match="shorter than the 5-byte header"):
        decode(b"\x00\x00")


def test_wrong_magic_byte_is_a_wire_error():
    with pytest.raises(WireFormatError, match="magic byte"):
        decode(b"\x01" + encode(sample_events()[0])[1:])


def test_unknown_schema_id_is_a_wire_error():
    with pytest.raises(WireFormatError, match="unknown schema id 999"):
        decode(struct.pack(">bI", 0, 999) + b"\x00")


def test_garbage_body_is_a_wire_error():
    with pytest.raises(WireFormatError, match="cannot decode"):
        decode(struct.pack(">bI", 0, 1) + b"\xff\xff\xff")


def test_body_violating_the_model_is_a_wire_error():
    good = encode(UploadedV1(**IDS, object_key="k", filename="f.jpg", size_bytes=1))
    # The Avro body of a different schema id parses as garbage for this model.
    with pytest.raises(WireFormatError):
        decode(good[:1] + struct.pack(">I", 5) + good[5:])
