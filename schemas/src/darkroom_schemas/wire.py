"""The wire format: Avro binary in the Confluent framing.

Every message value is ``0x00`` (magic byte) + the schema id as a 4-byte
big-endian unsigned integer + the Avro binary body (fastavro, schemaless).
Schema ids come from a committed, deterministic map (``avro/ids.json``), so a
real schema registry can take its place in production by registering the same
``.avsc`` files under the same ids. Source: Confluent, "Wire format",
Schema Registry documentation.

A schema registered under an id never changes, like a registry's. When a model
gains an optional field, its new schema gets a new id and the old text stays in
``avro/superseded/<id>.avsc`` (named in ``avro/superseded.json``): messages
already on the topics, read on a replay or by a consumer that is behind, are
decoded with the schema they were written with as the writer schema and the
current one as the reader schema (Avro 1.11 spec, "Schema Resolution"), so the
new field takes its default. ``avro/fingerprints.json`` records the SHA-256 of
every id's schema; a test fails when a committed schema changes under its id.
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
def superseded_ids() -> dict[int, str]:
    """Return ``{schema_id: schema_name}`` of the schemas no longer written but still read."""
    text = resources.files(AVSC_PACKAGE).joinpath("superseded.json").read_text("utf-8")
    return {int(sid): name for sid, name in json.loads(text).items()}


def superseded_schema(schema_id: int) -> dict[str, Any]:
    """Return the schema once registered under ``schema_id`` (``avro/superseded/<id>.avsc``).

    Raises:
        FileNotFoundError: no superseded schema has that id.
    """
    path = resources.files(AVSC_PACKAGE).joinpath("superseded", f"{schema_id}.avsc")
    return dict(json.loads(path.read_text("utf-8")))


@cache
def _parsed_superseded(schema_id: int) -> Any:
    return fastavro.parse_schema(superseded_schema(schema_id))


@cache
def _models_by_name() -> dict[str, WireModel]:
    models: list[WireModel] = [*EVENT_MODELS, DeadLetterV1, GallerySettingsV1]
    return {m.schema_name(): m for m in models}


@cache
def _parsed(schema_name: str) -> Any:
    return fastavro.parse_schema(committed_schema(schema_name))


def model_for_id(schema_id: int) -> WireModel:
    """Return the model class registered under ``schema_id`` (a current or superseded id).

    Raises:
        WireFormatError: the id is in neither committed map.
    """
    for name, sid in schema_ids().items():
        if sid == schema_id:
            return _models_by_name()[name]
    if schema_id in superseded_ids():
        return _models_by_name()[superseded_ids()[schema_id]]
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
    writer = _parsed(name)
    reader = None
    if schema_id in superseded_ids():
        writer, reader = _parsed_superseded(schema_id), _parsed(name)
    try:
        record = fastavro.schemaless_reader(io.BytesIO(data[_HEADER.size :]), writer, reader)
        return model.model_validate(record)
    except Exception as exc:  # fastavro raises several unrelated types on bad bytes
        raise WireFormatError(f"cannot decode a {name} body: {exc}") from exc
