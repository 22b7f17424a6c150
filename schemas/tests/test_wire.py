"""Confluent-framed Avro: round trips, and clear errors on bytes that are not events."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from darkroom_schemas import UploadedV1, WireFormatError, decode, encode
from darkroom_schemas.examples import IDS, example_events


@pytest.mark.parametrize("event", example_events(), ids=lambda e: type(e).__name__)
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
        decode(b"\x01" + encode(example_events()[0])[1:])


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
