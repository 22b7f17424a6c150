"""The Faust codec: events round-trip; undecodable bytes become values, not exceptions."""

from __future__ import annotations

import pytest
from faust.serializers import codecs

from darkroom_common.codec import CODEC_NAME, UndecodableEvent, register_codec
from darkroom_schemas import UploadedV1


@pytest.fixture(autouse=True)
def _registered():
    register_codec()
    register_codec()  # idempotent


def event():
    return UploadedV1(
        job_id="j",
        gallery_id="g",
        image_id="i",
        correlation_id="c",
        object_key="k",
        filename="f.jpg",
        size_bytes=1,
    )


def test_round_trip_through_faust_codec_registry():
    e = event()
    assert codecs.loads(CODEC_NAME, codecs.dumps(CODEC_NAME, e)) == e


def test_raw_bytes_pass_through_unchanged():
    assert codecs.dumps(CODEC_NAME, b"\x00abc") == b"\x00abc"


def test_garbage_decodes_to_an_undecodable_value():
    result = codecs.loads(CODEC_NAME, b"not avro at all")
    assert isinstance(result, UndecodableEvent)
    assert result.payload == b"not avro at all"
    assert "magic byte" in result.error


def test_non_event_objects_are_refused():
    with pytest.raises(TypeError, match="not a Darkroom event"):
        codecs.dumps(CODEC_NAME, {"a": 1})


def test_undecodable_value_survives_a_repartition_byte_for_byte():
    first = codecs.loads(CODEC_NAME, b"\x00\x00\x00\x00\x63junk")
    again = codecs.loads(CODEC_NAME, codecs.dumps(CODEC_NAME, first))
    assert again == first
