"""Schema evolution rules: every new version must be backward compatible.

Backward compatible (Confluent's ``BACKWARD``): a consumer on the new schema can
read every message written with the previous one. Checked with the Apache
``avro`` package's ``ReaderWriterCompatibilityChecker`` (Avro 1.11 spec,
"Schema Resolution").
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from importlib import resources
from typing import Any

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from darkroom_schemas.avro_schema import AVSC_PACKAGE

_AVSC_NAME = re.compile(r"^(?P<event>[a-z][a-z-]*)\.v(?P<version>\d+)\.avsc$")


def backward_incompatibilities(new: dict[str, Any], previous: dict[str, Any]) -> list[str]:
    """Return why readers on ``new`` cannot read data written with ``previous`` (empty if they can).

    Both arguments are Avro schemas as JSON-ready dicts.
    """
    reader = avro.schema.parse(json.dumps(new))
    writer = avro.schema.parse(json.dumps(previous))
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    return sorted(
        f"{loc}: {msg}" for loc, msg in zip(result.locations, result.messages, strict=False)
    ) or ["incompatible"]


def committed_versions() -> dict[str, list[int]]:
    """Return ``{event: [versions…]}`` for every committed ``.avsc``, versions ascending."""
    found: dict[str, list[int]] = defaultdict(list)
    for entry in resources.files(AVSC_PACKAGE).iterdir():
        if m := _AVSC_NAME.match(entry.name):
            found[m["event"]].append(int(m["version"]))
    return {event: sorted(versions) for event, versions in found.items()}
