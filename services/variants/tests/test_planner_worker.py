"""The planner and the render worker on real images in a real filesystem store."""

from __future__ import annotations

import asyncio
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import pyvips
from prometheus_client import REGISTRY

from darkroom_common.errors import StorageUnavailable
from darkroom_common.storage import FilesystemStore
from darkroom_imaging.profiles import load_profile
from darkroom_imaging.specs import spec_hash
from darkroom_schemas import ImageMetadata, ValidatedV1, VariantDoneV1
from darkroom_variants.planner import plan, plannable
from darkroom_variants.settings import VariantsSettings
from darkroom_variants.worker import Renderer, group_by_source, parse_spec, reuse

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
IDS = {"job_id": "j1", "gallery_id": "g1", "image_id": "i1", "correlation_id": "c1"}


def validated(key: str = "originals/g1/i1/a.jpg", **over) -> ValidatedV1:
    fields = {"accepted": True, "object_key": key, "filename": "a.jpg", "sha256": "a" * 64,
              "metadata": ImageMetadata(artist="Ada", copyright="© Ada")}  # fmt: skip
    return ValidatedV1(**IDS, **{**fields, **over})


def test_only_raster_sources_are_planned():
    assert plannable(validated())
    assert not plannable(validated(accepted=False))
    assert not plannable(validated(is_raw=True))
    assert plannable(validated(is_raw=True, derived_from="originals/g1/i1/a.cr2"))


def test_plan_makes_one_request_per_spec_of_the_profile():
    requests = plan(validated(), default_profile="default")
    profile = load_profile("default")
    assert isinstance(requests, list)
    assert [r.variant for r in requests] == [s.name for s in profile.specs]
    assert {r.variant_count for r in requests} == {len(profile.specs)}
    assert all(r.spec_hash == spec_hash(profile.spec(r.variant)) for r in requests)
    assert {r.artist for r in requests} == {"Ada"}


@pytest.mark.parametrize("name", ["nope", "../../etc/passwd", "/tmp/x.json"])
def test_unknown_or_path_like_profile_fails_the_job(name):
    out = plan(validated(profile=name), default_profile="default")
    assert isinstance(out, VariantDoneV1)
    assert (out.status, out.reason_code) == ("failed", "unknown_profile")


def test_profiles_dir_adds_named_profiles(tmp_path):
    (tmp_path / "tiny.json").write_text(
        json.dumps({"name": "tiny", "specs": [{"name": "t", "width": 16, "height": 16}]})
    )
    requests = plan(validated(profile="tiny"), default_profile="default", profiles_dir=tmp_path)
    assert [r.variant for r in requests] == ["t"]


@pytest.fixture
def store(tmp_path):
    return FilesystemStore(tmp_path / "store")


def requests_for(store, rel: str):
    key = f"originals/g1/i1/{Path(rel).name}"
    asyncio.run(store.put(key, (CORPUS / rel).read_bytes()))
    return plan(validated(key), default_profile="default")


def test_renderer_decodes_once_and_publishes_every_variant(store):
    requests = requests_for(store, "orientation/Portrait_6.jpg")
    [batch] = group_by_source(requests)
    renderer = Renderer(store, VariantsSettings(), ThreadPoolExecutor(1))

    async def go():
        await renderer.render_batch(batch)
        return [
            await renderer.publish(r, batch.outcomes[(r.variant, r.spec_hash)]) for r in requests
        ]

    timed = {"variant": "thumb", "format": "jpeg"}
    before = REGISTRY.get_sample_value("darkroom_variant_render_seconds_count", timed) or 0.0
    read = REGISTRY.get_sample_value("darkroom_object_bytes_total", {"direction": "read"}) or 0.0
    done = asyncio.run(go())
    assert {d.status for d in done} == {"done"}
    # Each variant's render time was observed, and the source download counted as bytes read.
    assert REGISTRY.get_sample_value("darkroom_variant_render_seconds_count", timed) == before + 1
    source_bytes = (CORPUS / "orientation/Portrait_6.jpg").stat().st_size
    assert (
        REGISTRY.get_sample_value("darkroom_object_bytes_total", {"direction": "read"})
        == read + source_bytes
    )
    for d in done:
        assert (
            d.object_key
            == f"variants/g1/i1/{d.variant}-{d.spec_hash}.{d.object_key.rsplit('.', 1)[1]}"
        )
        image = pyvips.Image.new_from_file(str(store.local_path(d.object_key)))
        assert (image.width, image.height) == (d.width, d.height)
        assert d.provenance["worker"]
    thumb = next(d for d in done if d.variant == "thumb")
    assert (thumb.width, thumb.height) == (300, 300)


def test_spec_that_does_not_match_its_hash_is_an_invalid_spec(store):
    [request, *_] = requests_for(store, "orientation/Portrait_6.jpg")
    bad = request.model_copy(update={"spec_hash": "0123456789abcdef"})
    failure = parse_spec(bad)
    assert failure.reason.value == "invalid_spec"
    broken = request.model_copy(update={"spec_json": '{"name": "x"}'})
    assert parse_spec(broken).reason.value == "invalid_spec"


def test_missing_source_fails_each_request_with_source_missing(store):
    requests = requests_for(store, "orientation/Portrait_6.jpg")
    asyncio.run(store.delete(requests[0].source_key))
    renderer = Renderer(store, VariantsSettings(), ThreadPoolExecutor(1))
    outcome = asyncio.run(renderer.render_one(requests[0]))
    done = asyncio.run(renderer.publish(requests[0], outcome))
    assert (done.status, done.reason_code) == ("failed", "source_missing")


def test_a_redelivered_request_reuses_the_object_rendered_from_the_same_source(store):
    [request, *_] = requests_for(store, "orientation/Portrait_6.jpg")
    renderer = Renderer(store, VariantsSettings(), ThreadPoolExecutor(1))

    async def go():
        first = await renderer.publish(request, await renderer.render_one(request))
        again = await reuse(store, request, same_source=True)
        newer = request.model_copy(update={"source_sha256": "b" * 64})  # e.g. a new RAW master
        return first, again, await reuse(store, newer, same_source=True), await reuse(store, newer)

    first, again, other_source, any_source = asyncio.run(go())
    fields = ("object_key", "width", "height", "bytes", "thumbhash", "dominant_colour")
    assert again is not None
    assert [getattr(again, f) for f in fields] == [getattr(first, f) for f in fields]
    assert other_source is None
    assert any_source is not None  # the replay lane reuses by spec alone


class UnreachableStore(FilesystemStore):
    """A filesystem store whose metadata reads fail as an unavailable S3 would."""

    async def head(self, key: str):
        raise StorageUnavailable(f"HEAD {key}: 503 SlowDown")


def test_a_store_that_cannot_tell_leaves_the_request_to_the_render_path(store, caplog):
    [request, *_] = requests_for(store, "orientation/Portrait_6.jpg")
    renderer = Renderer(store, VariantsSettings(), ThreadPoolExecutor(1))
    asyncio.run(renderer.publish(request, asyncio.run(renderer.render_one(request))))
    assert asyncio.run(reuse(store, request, same_source=True)) is not None
    unreachable = UnreachableStore(store.root)
    assert asyncio.run(reuse(unreachable, request, same_source=True)) is None
    assert "reuse check failed" in caplog.text
