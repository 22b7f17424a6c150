"""The wire format: Avro binary in the Confluent framing.

Every message value is ``0x00`` (magic byte) + the schema id as a 4-byte
big-endian unsigned integer + the Avro binary body (fastavro, schemaless).
Schema ids come from a committed, deterministic map (``avro/ids.json``), so a
real schema registry can take its place in production by registering the same
``.avsc`` files under the same ids. Source: Confluent, "Wire format",
Schema Registry documentation.
"""

from __future__ import annotations

import io
import json
import struct
from functools import cache
from importlib import resources
from typing import Any

import fastavro

from darkroom_schemas.avro_schema import AVSC_PACKAGE, committed_schema
from darkroom_schemas.base import WireRecord
from darkroom_schemas.events import EVENT_MODELS, DeadLetterV1, GallerySettingsV1

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")
WireModel = type[WireRecord]


class WireFormatError(ValueError):
    """Bytes that are not a Darkroom event: bad framing, unknown schema id or a bad body."""


@cache
def schema_ids() -> dict[str, int]:
    """Return the committed map ``{"uploaded.v1": 1, …}`` of schema names to ids."""
    text = resources.files(AVSC_PACKAGE).joinpath("ids.json").read_text("utf-8")
    return dict(json.loads(text))


@cache
def _models_by_name() -> dict[str, WireModel]:
    models: list[WireModel] = [*EVENT_MODELS, DeadLetterV1, GallerySettingsV1]
    return {m.schema_name(): m for m in models}


@cache
def _parsed(schema_name: str) -> Any:
    return fastavro.parse_schema(committed_schema(schema_name))


def model_for_id(schema_id: int) -> WireModel:
    """Return the model class registered under ``schema_id``.

    Raises:
        WireFormatError: the id is not in the committed map.
    """
    for name, sid in schema_ids().items():
        if sid == schema_id:
            return _models_by_name()[name]
    raise WireFormatError(f"unknown schema id {schema_id}; is this producer newer than us?")


def encode(event: WireRecord) -> bytes:
    """Serialise ``event`` to a framed Avro message value.

    Raises:
        KeyError: the event's model has no committed schema id.
    """
    name = type(event).schema_name()
    buf = io.BytesIO()
    buf.write(_HEADER.pack(MAGIC_BYTE, schema_ids()[name]))
    fastavro.schemaless_writer(buf, _parsed(name), event.model_dump(mode="python"))
    return buf.getvalue()


def decode(data: bytes) -> WireRecord:
    """Parse a framed Avro message value back into its model.

    Raises:
        WireFormatError: empty or short input, a wrong magic byte, an unknown
            schema id, or a body that does not match the schema or the model.
    """
    if len(data) < _HEADER.size:
        raise WireFormatError(f"message is {len(data)} bytes, shorter than the 5-byte header")
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC_BYTE:
        raise WireFormatError(f"magic byte is {magic}, expected {MAGIC_BYTE} (Confluent framing)")
    model = model_for_id(schema_id)
    name = model.schema_name()
    try:
        record = fastavro.schemaless_reader(io.BytesIO(data[_HEADER.size :]), _parsed(name), None)
        return model.model_validate(record)
    except Exception as exc:  # fastavro raises several unrelated types on bad bytes
        raise WireFormatError(f"cannot decode a {name} body: {exc}") from exc
