"""A variant request is parsed once: its spec checked against its hash, its key derived."""

from __future__ import annotations

from darkroom_imaging.outcomes import Failure, Reason
from darkroom_imaging.profiles import ProfileCatalog
from darkroom_variants.planner import plan
from darkroom_variants.request import RenderRequest


def requests(validated):
    return plan(validated(), ProfileCatalog(), default_profile="default")


def test_a_request_parses_into_its_spec_key_slot_and_source(validated):
    for event in requests(validated):
        parsed = RenderRequest.parse(event)
        assert isinstance(parsed, RenderRequest)
        assert parsed.event is event
        assert parsed.spec.name == event.variant
        ext = parsed.spec.extension
        assert parsed.key == f"variants/g1/i1/{event.variant}-{event.spec_hash}.{ext}"
        assert parsed.slot == (event.variant, event.spec_hash)
        assert parsed.source == ("originals/g1/i1/a.jpg", "a" * 64)


def test_a_spec_that_does_not_match_its_hash_is_an_invalid_spec(validated):
    [request, *_] = requests(validated)
    bad = RenderRequest.parse(request.model_copy(update={"spec_hash": "0123456789abcdef"}))
    assert isinstance(bad, Failure)
    assert bad.reason is Reason.INVALID_SPEC
    assert "hash" in bad.message


def test_a_spec_that_does_not_validate_is_an_invalid_spec(validated):
    [request, *_] = requests(validated)
    for broken in ('{"name": "x"}', "not json"):
        failure = RenderRequest.parse(request.model_copy(update={"spec_json": broken}))
        assert isinstance(failure, Failure)
        assert failure.reason is Reason.INVALID_SPEC


def test_a_variant_name_that_cannot_be_a_key_is_an_invalid_spec(validated):
    [request, *_] = requests(validated)
    failure = RenderRequest.parse(request.model_copy(update={"variant": "../../originals/x"}))
    assert isinstance(failure, Failure)
    assert failure.reason is Reason.INVALID_SPEC
