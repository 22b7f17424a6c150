"""Derive Avro schemas from the pydantic models, and load the committed ``.avsc`` files.

The derivation follows the Avro 1.11 specification: optional fields become
``["null", T]`` unions with a ``null`` default, ``datetime`` becomes
``long``/``timestamp-micros``, ``UUID`` becomes ``string``/``uuid``, nested models
become named records. It exists so a test can prove each model and its
committed schema agree; the committed files are what the wire uses.
"""

from __future__ import annotations

import json
import types
import typing
import uuid
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from darkroom_schemas.base import WireRecord

AVSC_PACKAGE = "darkroom_schemas.avro"
_PRIMITIVES: dict[type, Any] = {
    str: "string",
    int: "long",
    float: "double",
    bool: "boolean",
    bytes: "bytes",
    uuid.UUID: {"type": "string", "logicalType": "uuid"},
    datetime: {"type": "long", "logicalType": "timestamp-micros"},
}


def avro_schema_for(model: type[WireRecord]) -> dict[str, Any]:
    """Return the Avro record schema (a JSON-ready dict) derived from ``model``.

    Raises:
        TypeError: a field's type has no Avro mapping here.
    """
    namespace = getattr(model, "avro_namespace", "io.darkroom.events")
    name = model.schema_name().replace("-", "_").replace(".", "_")
    return _record(model, _pascal(name), namespace, set())


def _pascal(snake: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_"))


def _record(model: type[BaseModel], name: str, namespace: str, seen: set[str]) -> dict[str, Any]:
    seen.add(name)
    fields = []
    for field_name, info in model.model_fields.items():
        avro_type = _type(info.annotation, namespace, seen)
        field: dict[str, Any] = {"name": field_name, "type": avro_type}
        if info.description:
            field["doc"] = info.description
        default = _default(info, avro_type)
        if default is not PydanticUndefined:
            field["default"] = default
        fields.append(field)
    record: dict[str, Any] = {"type": "record", "name": name, "namespace": namespace}
    if model.__doc__:
        record["doc"] = model.__doc__.strip().splitlines()[0]
    record["fields"] = fields
    return record


def _default(info: Any, avro_type: Any) -> Any:
    if info.default_factory is list:
        return []
    if info.default_factory is dict:
        return {}
    if info.default is PydanticUndefined or info.default_factory is not None:
        return PydanticUndefined
    return info.default


def _type(annotation: Any, namespace: str, seen: set[str]) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0], namespace, seen)
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"only Optional[T] unions map to Avro here, not {annotation!r}")
        return ["null", _type(members[0], namespace, seen)]
    if origin is Literal:
        kinds = {type(a) for a in args}
        if len(kinds) != 1:
            raise TypeError(f"mixed-type Literal {annotation!r}")
        return _type(kinds.pop(), namespace, seen)
    if origin is list:
        return {"type": "array", "items": _type(args[0], namespace, seen)}
    if origin is dict:
        if args[0] is not str:
            raise TypeError("Avro maps need string keys")
        return {"type": "map", "values": _type(args[1], namespace, seen)}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        name = annotation.__name__
        if name in seen:
            return f"{namespace}.{name}"
        return _record(annotation, name, namespace, seen)
    if annotation in _PRIMITIVES:
        return _PRIMITIVES[annotation]
    raise TypeError(f"no Avro mapping for {annotation!r}")


@cache
def committed_schema(schema_name: str) -> dict[str, Any]:
    """Return the committed ``<schema_name>.avsc`` (e.g. ``uploaded.v1``) as a dict.

    Raises:
        FileNotFoundError: no such schema file is committed.
    """
    text = resources.files(AVSC_PACKAGE).joinpath(f"{schema_name}.avsc").read_text("utf-8")
    return typing.cast(dict[str, Any], json.loads(text))


def render_avsc(model: type[WireRecord]) -> str:
    """Return the ``.avsc`` text for ``model`` exactly as it is committed (2-space JSON)."""
    return json.dumps(avro_schema_for(model), indent=2, ensure_ascii=False) + "\n"
