"""Each model agrees with its committed .avsc, and versions evolve compatibly."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import struct
from pathlib import Path

import avro.schema
import fastavro
import pytest

from darkroom_schemas import EVENT_MODELS, DeadLetterV1, GallerySettingsV1, wire
from darkroom_schemas.avro_schema import avro_schema_for, committed_schema
from darkroom_schemas.compat import backward_incompatibilities, committed_versions
from darkroom_schemas.examples import example_events
from darkroom_schemas.wire import schema_ids, superseded_ids, superseded_schema

AVRO_DIR = Path(__file__).parents[1] / "src" / "darkroom_schemas" / "avro"

FIXTURES = Path(__file__).parent / "fixtures"
ALL_MODELS = [*EVENT_MODELS, DeadLetterV1, GallerySettingsV1]


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.schema_name())
def test_model_matches_committed_avsc(model):
    assert avro_schema_for(model) == committed_schema(model.schema_name()), (
        f"{model.__name__} and {model.schema_name()}.avsc disagree; regenerate with "
        "`darkroom schemas export` and add a new version if the change is not additive"
    )


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.schema_name())
def test_committed_avsc_parses_with_both_avro_libraries(model):
    text = json.dumps(committed_schema(model.schema_name()))
    avro.schema.parse(text)
    fastavro.parse_schema(json.loads(text))


def test_every_committed_schema_has_a_stable_unique_id():
    ids = schema_ids()
    assert sorted(ids) == sorted(m.schema_name() for m in ALL_MODELS)
    assert len(set(ids.values())) == len(ids)
    assert not set(ids.values()) & set(superseded_ids()), "an id is both current and superseded"


def _fingerprint(schema: dict) -> str:
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_a_schema_never_changes_under_its_id():
    recorded = json.loads((AVRO_DIR / "fingerprints.json").read_text())
    current = {str(sid): committed_schema(name) for name, sid in schema_ids().items()}
    old = {str(sid): superseded_schema(sid) for sid in superseded_ids()}
    assert sorted({**current, **old}, key=int) == sorted(recorded, key=int)
    for sid, schema in {**current, **old}.items():
        assert _fingerprint(schema) == recorded[sid], (
            f"the schema registered under id {sid} changed; give the new schema a new id in "
            "ids.json, keep the old text as superseded/<id>.avsc (superseded.json) and "
            "record both fingerprints"
        )


@pytest.mark.parametrize("schema_id", sorted(superseded_ids()))
def test_messages_written_with_a_superseded_schema_still_decode(schema_id):
    """A replay (or a consumer behind a producer upgrade) reads what the old schema wrote."""
    name = superseded_ids()[schema_id]
    assert not backward_incompatibilities(committed_schema(name), superseded_schema(schema_id))
    for event in example_events():
        if type(event).schema_name() != name:
            continue
        body = io.BytesIO()
        body.write(struct.pack(">bI", 0, schema_id))
        fastavro.schemaless_writer(
            body, fastavro.parse_schema(superseded_schema(schema_id)), event.model_dump()
        )
        assert wire.decode(body.getvalue()) == event
        assert wire.encode(event)[1:5] == struct.pack(">I", schema_ids()[name])


def test_event_models_carry_the_envelope_fields():
    envelope = {
        "event_id",
        "schema_version",
        "occurred_at",
        "job_id",
        "gallery_id",
        "image_id",
        "correlation_id",
    }
    for model in [*EVENT_MODELS, DeadLetterV1]:
        assert envelope <= set(model.model_fields), model.__name__
    gallery_envelope = {"event_id", "schema_version", "occurred_at", "gallery_id", "correlation_id"}
    assert gallery_envelope <= set(GallerySettingsV1.model_fields)


def test_each_new_version_is_backward_compatible_with_the_previous():
    for event, versions in committed_versions().items():
        for previous, new in itertools.pairwise(versions):
            problems = backward_incompatibilities(
                committed_schema(f"{event}.v{new}"), committed_schema(f"{event}.v{previous}")
            )
            assert not problems, f"{event}.v{new} breaks readers of v{previous}: {problems}"


def test_checker_accepts_an_additive_optional_field():
    new = json.loads((FIXTURES / "uploaded.v2.compatible.avsc").read_text())
    assert backward_incompatibilities(new, committed_schema("uploaded.v1")) == []


def test_checker_rejects_an_incompatible_change():
    new = json.loads((FIXTURES / "uploaded.v2.incompatible.avsc").read_text())
    problems = backward_incompatibilities(new, committed_schema("uploaded.v1"))
    assert problems
    joined = " ".join(problems)
    assert "uploader_id" in joined or "size_bytes" in joined
