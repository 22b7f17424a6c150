"""The stage's routes: what each consumed topic causes, and that ``mount`` accepts them."""

from __future__ import annotations

import uuid

import pytest

from darkroom_common.ports import Ports
from darkroom_common.producer import KafkaEventProducer
from darkroom_common.storage.config import StorageSettings
from darkroom_runtime import Batching, MountError, StageApp, mount
from darkroom_schemas import ImageDeletedV1, VariantDoneV1, VariantRequestedV1
from darkroom_schemas.topics import stage
from darkroom_variants.app import build_app
from darkroom_variants.routes import routes
from darkroom_variants.scheduler import LiveFirst
from darkroom_variants.settings import VariantsSettings


@pytest.fixture
def settings(tmp_path, profiles_dir) -> VariantsSettings:
    return VariantsSettings(
        topic_prefix=f"wired{uuid.uuid4().hex[:8]}.",
        data_dir=tmp_path / "data",
        profiles_dir=profiles_dir,
        storage=StorageSettings(root=tmp_path / "objects"),
    )


@pytest.fixture
def ports(settings, store, metrics, clock, galleries) -> Ports:
    producer = KafkaEventProducer("127.0.0.1:9", topic_prefix=settings.topic_prefix)
    return Ports(producer, galleries(g1="tiny"), store, metrics, clock)


def test_mount_accepts_the_variants_routes(settings):
    app = build_app(settings)
    assert "image-deleted" in stage("variants").consumes
    assert app.topics == sorted(settings.topic(t) for t in stage("variants").consumes)
    assert app.group_id == f"{settings.topic_prefix}variants"


def test_mount_refuses_a_missing_route(settings, ports, executor):
    handlers = routes(ports, settings, executor)
    del handlers["image-deleted"]
    with pytest.raises(MountError, match="no handler for image-deleted"):
        mount(StageApp("variants", settings), "variants", handlers, ports)
    assert build_app(settings, ports).ports is ports


def test_both_render_routes_are_batched_and_live_goes_first(settings, ports, executor, clock):
    gate = LiveFirst(settings.replay_quiet_s, clock)
    handlers = routes(ports, settings, executor, gate=gate)
    live, replay = handlers["variant-requested"], handlers["replay.variant-requested"]
    assert live.batching == Batching(settings.batch_max, settings.batch_window_s)
    assert replay.batching == Batching(settings.replay_batch_max, settings.batch_window_s)
    assert (live.around, replay.around) == (gate.live, gate.replay)


async def test_the_planners_send_requests_to_their_own_lane(settings, ports, executor, validated):
    handlers = routes(ports, settings, executor)
    assert handlers["validated"].handle
    assert handlers["replay.validated"].handle
    live = await handlers["validated"].handle(validated())
    replay = await handlers["replay.validated"].handle(validated())
    assert [(e.topic, e.value.variant) for e in live] == [
        ("variant-requested", "t"), ("variant-requested", "w"),
    ]  # fmt: skip
    assert [e.topic for e in replay] == ["replay.variant-requested"] * 2
    assert all(isinstance(e.value, VariantRequestedV1) for e in [*live, *replay])
    [unknown] = await handlers["validated"].handle(validated(profile="nope"))
    assert unknown.topic == "variant-done"
    assert isinstance(unknown.value, VariantDoneV1)
    assert unknown.value.reason_code == "unknown_profile"
    assert await handlers["validated"].handle(validated(accepted=False)) == []


async def test_the_render_route_answers_each_request_with_its_variant_done(
    settings, ports, executor, put_source
):
    events = await put_source("orientation/Portrait_6.jpg")
    for topic in ("variant-requested", "replay.variant-requested"):
        route = routes(ports, settings, executor)[topic]
        assert route.prepare is not None
        handle = await route.prepare(events)
        emitted = [await handle(e) for e in events]
        assert [[(e.topic, e.value.status) for e in out] for out in emitted] == [
            [("variant-done", "done")]
        ] * 2


async def test_image_deleted_removes_that_images_variants_only(settings, ports, executor, store):
    keys = ["variants/g1/i1/t-1.jpg", "variants/g1/i1/w-2.webp", "variants/g1/i10/t-1.jpg",
            "originals/g1/i1/a.jpg"]  # fmt: skip
    for key in keys:
        await store.put(key, b"x")
    delete = routes(ports, settings, executor)["image-deleted"].handle
    assert delete is not None
    event = ImageDeletedV1(job_id="i1", gallery_id="g1", image_id="i1", correlation_id="c1")
    assert await delete(event) == []
    assert await delete(event) == []  # a redelivered delete finds nothing
    assert [i.key async for i in store.list("")] == sorted(keys[2:])


def test_profiles_dir_comes_from_the_shared_or_the_service_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("DARKROOM_PROFILES_DIR", str(tmp_path / "shared"))
    assert VariantsSettings().profiles_dir == tmp_path / "shared"
    monkeypatch.setenv("DARKROOM_VARIANTS_PROFILES_DIR", str(tmp_path / "mine"))
    assert VariantsSettings().profiles_dir == tmp_path / "mine"
