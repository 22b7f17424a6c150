"""A render batch: one decode per source, reuse of what is stored, one answer per request."""

from __future__ import annotations

import pytest

from darkroom_common.errors import PoisonEvent, StorageUnavailable
from darkroom_common.storage import FilesystemStore
from darkroom_variants.batch import RenderBatch, group_by_source
from darkroom_variants.request import RenderRequest
from darkroom_variants.settings import VariantsSettings
from darkroom_variants.worker import Renderer

PORTRAIT = "orientation/Portrait_6.jpg"
LANDSCAPE = "orientation/Landscape_1.jpg"


def read(metrics) -> float:
    return (
        metrics.registry.get_sample_value("darkroom_object_bytes_total", {"direction": "read"})
        or 0.0
    )


def renders(metrics) -> float:
    return sum(
        s.value
        for family in metrics.variant_seconds.collect()
        for s in family.samples
        if s.name.endswith("_count")
    )


async def answer(batch, events):
    return [await batch(e) for e in events]


async def test_each_source_is_read_once_when_its_first_request_is_handled(
    put_source, renderer, metrics, corpus
):
    a = await put_source(PORTRAIT)
    b = await put_source(LANDSCAPE, image="i2")
    events = [a[0], b[0], a[1], b[1]]
    batch = RenderBatch(renderer, events, same_source=True)
    assert read(metrics) == 0  # nothing happens before a request is handled
    first = await batch(events[0])
    assert read(metrics) == (corpus / PORTRAIT).stat().st_size
    done = [first, *await answer(batch, events[1:])]
    assert read(metrics) == (corpus / PORTRAIT).stat().st_size + (corpus / LANDSCAPE).stat().st_size
    assert renders(metrics) == 4
    assert [(d.image_id, d.variant, d.status) for d in done] == [
        ("i1", "t", "done"), ("i2", "t", "done"), ("i1", "w", "done"), ("i2", "w", "done"),
    ]  # fmt: skip
    assert [d.object_key for d in done] == [RenderRequest.parse(e).key for e in events]  # type: ignore[union-attr]


async def test_the_live_lane_answers_a_redelivered_request_from_its_first_render(
    put_source, renderer, metrics
):
    events = await put_source(PORTRAIT)
    first = await answer(RenderBatch(renderer, events, same_source=True), events)
    before = read(metrics)
    again = await answer(RenderBatch(renderer, events, same_source=True), events)
    assert read(metrics) == before  # not even downloaded
    assert [d.provenance.get("reused") for d in again] == ["true", "true"]
    fields = ("object_key", "width", "height", "bytes", "thumbhash", "dominant_colour")
    assert [[getattr(d, f) for f in fields] for d in again] == [
        [getattr(d, f) for f in fields] for d in first
    ]


async def test_a_new_source_is_rendered_again_live_but_reused_by_a_replay(
    put_source, renderer, metrics
):
    events = await put_source(PORTRAIT)
    await answer(RenderBatch(renderer, events), events)
    redeveloped = [e.model_copy(update={"source_sha256": "b" * 64}) for e in events]
    replayed = await answer(RenderBatch(renderer, redeveloped), redeveloped)
    assert {d.provenance.get("reused") for d in replayed} == {"true"}
    assert renders(metrics) == 2
    live = await answer(RenderBatch(renderer, redeveloped, same_source=True), redeveloped)
    assert {d.provenance.get("reused") for d in live} == {None}
    assert renders(metrics) == 4


async def test_a_replay_renders_only_what_is_not_stored_yet(put_source, renderer, metrics, store):
    events = await put_source(PORTRAIT)
    first = await answer(RenderBatch(renderer, events), events)
    await store.delete(first[1].object_key)  # e.g. a variant added to the profile
    replayed = await answer(RenderBatch(renderer, events), events)
    assert [d.provenance.get("reused") for d in replayed] == ["true", None]
    assert renders(metrics) == 3
    assert await store.exists(first[1].object_key)


class FlakyStore(FilesystemStore):
    """A filesystem store whose first ``fails`` reads fail as an unavailable S3 would."""

    def __init__(self, root, fails: int) -> None:
        super().__init__(root)
        self.fails = fails

    async def get(self, key, **options):
        if self.fails:
            self.fails -= 1
            raise StorageUnavailable(f"GET {key}: 503 SlowDown")
        async for chunk in super().get(key, **options):
            yield chunk


async def test_after_a_failed_shared_render_each_request_is_rendered_alone(
    put_source, store, executor, metrics, corpus
):
    events = await put_source(PORTRAIT)
    flaky = FlakyStore(store.root, fails=1)
    batch = RenderBatch(Renderer(flaky, VariantsSettings(), executor, metrics), events)
    with pytest.raises(StorageUnavailable):
        await batch(events[0])
    done = await answer(batch, events)  # the runtime's retry, then the next request
    assert [d.status for d in done] == ["done", "done"]
    assert read(metrics) == 2 * (corpus / PORTRAIT).stat().st_size
    assert renders(metrics) == 2


async def test_a_request_that_does_not_parse_fails_alone(put_source, renderer):
    good, other = await put_source(PORTRAIT)
    bad = other.model_copy(update={"spec_hash": "0123456789abcdef"})
    batch = RenderBatch(renderer, [good, bad])
    failed, done = await batch(bad), await batch(good)
    assert (failed.status, failed.reason_code, failed.variant) == ("failed", "invalid_spec", "w")
    assert done.status == "done"


async def test_what_is_not_a_request_is_a_poison_event_and_a_stranger_is_rendered_alone(
    put_source, renderer
):
    events = await put_source(PORTRAIT)
    batch = RenderBatch(renderer, [object(), events[0]])
    with pytest.raises(PoisonEvent):
        await batch(object())
    stranger = await batch(events[1])
    assert (stranger.variant, stranger.status) == ("w", "done")


async def test_requests_are_grouped_by_source_in_first_seen_order(put_source):
    a = await put_source(PORTRAIT)
    b = await put_source(LANDSCAPE, image="i2")
    parsed = [RenderRequest.parse(e) for e in (b[0], a[0], b[1])]
    groups = group_by_source(parsed)  # type: ignore[arg-type]
    assert [[r.event for r in g.requests] for g in groups] == [[b[0], b[1]], [a[0]]]
