"""The renderer on real images in a real filesystem store: one decode, deterministic keys, reuse."""

from __future__ import annotations

import pytest
import pyvips

from darkroom_common.errors import StorageUnavailable
from darkroom_common.storage import FilesystemStore
from darkroom_imaging.outcomes import Failure, Reason
from darkroom_imaging.render import RenderedVariant
from darkroom_variants.request import RenderRequest
from darkroom_variants.settings import VariantsSettings
from darkroom_variants.worker import Renderer, reuse


def parsed(events) -> list[RenderRequest]:
    out = [RenderRequest.parse(e) for e in events]
    assert all(isinstance(r, RenderRequest) for r in out)
    return out  # type: ignore[return-value]


def count(metrics, name: str, labels: dict[str, str]) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_the_renderer_decodes_once_and_publishes_every_variant(
    put_source, renderer, metrics, store, corpus
):
    requests = parsed(await put_source("orientation/Portrait_6.jpg", profile="default"))
    outcomes = await renderer.render(requests)
    done = [await renderer.publish(r, outcomes[r.slot]) for r in requests]
    assert {d.status for d in done} == {"done"}
    # Each variant's render time was observed, and the source was read once.
    assert count(metrics, "darkroom_variant_render_seconds_count",
                 {"variant": "thumb", "format": "jpeg"}) == 1  # fmt: skip
    source_bytes = (corpus / "orientation/Portrait_6.jpg").stat().st_size
    assert count(metrics, "darkroom_object_bytes_total", {"direction": "read"}) == source_bytes
    written = sum([(await store.head(d.object_key)).size for d in done])
    assert count(metrics, "darkroom_object_bytes_total", {"direction": "write"}) == written
    for d, r in zip(done, requests, strict=True):
        assert d.object_key == r.key
        assert d.object_key.startswith(f"variants/g1/i1/{d.variant}-{d.spec_hash}.")
        image = pyvips.Image.new_from_file(str(store.local_path(d.object_key)))
        assert (image.width, image.height) == (d.width, d.height)
        assert d.provenance["worker"]
        assert (d.job_id, d.correlation_id, d.attempt) == ("i1", "c1", 1)
    thumb = next(d for d in done if d.variant == "thumb")
    assert (thumb.width, thumb.height) == (300, 300)


async def test_a_missing_source_fails_each_request_with_source_missing(put_source, renderer, store):
    requests = parsed(await put_source("orientation/Portrait_6.jpg"))
    await store.delete(requests[0].event.source_key)
    outcome = await renderer.render_one(requests[0])
    done = await renderer.publish(requests[0], outcome)
    assert (done.status, done.reason_code) == ("failed", "source_missing")
    assert set((await renderer.render(requests)).values()) == {outcome}


async def test_two_specs_under_one_name_are_each_rendered(put_source, renderer):
    [thumb, webp] = parsed(await put_source("orientation/Portrait_6.jpg"))
    other = RenderRequest(thumb.event.model_copy(update={"variant": "w"}), webp.spec, "k")
    outcomes = await renderer.render([webp, other, webp])
    assert len(outcomes) == 2
    assert all(isinstance(o, RenderedVariant) for o in outcomes.values())


async def test_render_takes_the_requests_of_one_source(put_source, renderer):
    one = parsed(await put_source("orientation/Portrait_6.jpg"))
    two = parsed(await put_source("orientation/Landscape_1.jpg", image="i2"))
    with pytest.raises(ValueError):
        await renderer.render([one[0], two[0]])


async def test_a_failure_is_published_as_a_failed_variant_done(put_source, renderer, store):
    [request, *_] = parsed(await put_source("orientation/Portrait_6.jpg"))
    done = await renderer.publish(request, Failure(Reason.DECODE_ERROR, "Broken."))
    assert (done.status, done.reason_code, done.reason_message) == (
        "failed",
        "decode_error",
        "Broken.",
    )
    assert not await store.exists(request.key)


async def test_a_redelivered_request_reuses_the_object_rendered_from_the_same_source(
    put_source, renderer, store
):
    [request, *_] = parsed(await put_source("orientation/Portrait_6.jpg"))
    first = await renderer.publish(request, await renderer.render_one(request))
    again = await reuse(store, request, same_source=True)
    newer = RenderRequest.parse(request.event.model_copy(update={"source_sha256": "b" * 64}))
    assert isinstance(newer, RenderRequest)  # e.g. a new RAW master under the same key
    fields = ("object_key", "width", "height", "bytes", "thumbhash", "dominant_colour")
    assert again is not None
    assert [getattr(again, f) for f in fields] == [getattr(first, f) for f in fields]
    assert again.provenance["reused"] == "true"
    assert await reuse(store, newer, same_source=True) is None
    assert await reuse(store, newer) is not None  # the replay lane reuses by spec alone


async def test_an_object_without_the_renderers_metadata_is_not_reused(put_source, store):
    [request, *_] = parsed(await put_source("orientation/Portrait_6.jpg"))
    assert await reuse(store, request) is None
    await store.put(request.key, b"not ours")
    assert await reuse(store, request) is None


class UnreachableStore(FilesystemStore):
    """A filesystem store whose metadata reads fail as an unavailable S3 would."""

    async def head(self, key: str):
        raise StorageUnavailable(f"HEAD {key}: 503 SlowDown")


async def test_a_store_that_cannot_tell_leaves_the_request_to_the_render_path(
    put_source, store, executor, metrics, caplog
):
    [request, *_] = parsed(await put_source("orientation/Portrait_6.jpg"))
    renderer = Renderer(store, VariantsSettings(), executor, metrics)
    await renderer.publish(request, await renderer.render_one(request))
    assert await reuse(store, request, same_source=True) is not None
    assert await reuse(UnreachableStore(store.root), request, same_source=True) is None
    assert "reuse check failed" in caplog.text
