"""The planner: which images are planned, with which profile, into which requests."""

from __future__ import annotations

import pytest

from darkroom_common.errors import PoisonEvent
from darkroom_common.gallery_settings import GallerySettingsCache
from darkroom_common.ports import GallerySettingsUnavailable
from darkroom_imaging.profiles import ProfileCatalog, load_profile
from darkroom_imaging.specs import spec_hash
from darkroom_schemas import VariantDoneV1
from darkroom_variants.planner import PLAN_VARIANT, Planner, plan, plannable


def test_only_raster_sources_are_planned(validated):
    assert plannable(validated())
    assert not plannable(validated(accepted=False))
    assert not plannable(validated(is_raw=True))
    assert plannable(validated(is_raw=True, derived_from="originals/g1/i1/a.cr2"))


def test_plan_makes_one_request_per_spec_of_the_profile(validated):
    requests = plan(validated(), ProfileCatalog(), default_profile="default")
    profile = load_profile("default")
    assert isinstance(requests, list)
    assert [r.variant for r in requests] == [s.name for s in profile.specs]
    assert {r.variant_count for r in requests} == {len(profile.specs)}
    assert all(r.spec_hash == spec_hash(profile.spec(r.variant)) for r in requests)
    assert {(r.profile, r.source_key, r.source_sha256) for r in requests} == {
        ("default", "originals/g1/i1/a.jpg", "a" * 64)
    }
    assert {(r.artist, r.copyright) for r in requests} == {("Ada", "© Ada")}


@pytest.mark.parametrize("name", ["nope", "../../etc/passwd", "/tmp/x.json"])
def test_unknown_or_path_like_profile_fails_the_job(validated, name):
    out = plan(validated(profile=name), ProfileCatalog(), default_profile="default")
    assert isinstance(out, VariantDoneV1)
    assert (out.status, out.reason_code, out.variant) == ("failed", "unknown_profile", PLAN_VARIANT)
    assert (out.job_id, out.image_id) == ("i1", "i1")


def test_profiles_dir_adds_named_profiles(validated, catalog):
    requests = plan(validated(profile="tiny"), catalog, default_profile="default")
    assert [r.variant for r in requests] == ["t", "w"]  # type: ignore[union-attr]


def test_profile_precedence_event_then_gallery_then_default(validated, catalog, profiles_dir):
    (profiles_dir / "wee.json").write_text(
        '{"name": "wee", "specs": [{"name": "x", "width": 4, "height": 4}]}'
    )
    by_event = plan(validated(profile="tiny"), catalog, default_profile="default",
                    gallery_profile="wee")  # fmt: skip
    by_gallery = plan(validated(), catalog, default_profile="default", gallery_profile="wee")
    by_default = plan(validated(), catalog, default_profile="default")
    assert [r.variant for r in by_event] == ["t", "w"]  # type: ignore[union-attr]
    assert [r.variant for r in by_gallery] == ["x"]  # type: ignore[union-attr]
    assert {r.profile for r in by_default} == {"default"}  # type: ignore[union-attr]


def test_an_accepted_image_without_sha256_is_a_poison_event(validated):
    with pytest.raises(PoisonEvent):
        plan(validated(sha256=None), ProfileCatalog(), default_profile="default")


async def test_the_gallerys_profile_is_read_only_when_the_event_names_none(
    validated, catalog, galleries
):
    settings = galleries(g1="tiny")
    planner = Planner(catalog, settings, "default")
    by_gallery = await planner(validated())
    assert [r.variant for r in by_gallery] == ["t", "w"]  # type: ignore[union-attr]
    named = await planner(validated(profile="default"))
    assert [r.variant for r in named] == [s.name for s in load_profile("default").specs]  # type: ignore[union-attr]
    unset = await planner(validated(gallery_id="gx"))
    assert {r.profile for r in unset} == {"default"}  # type: ignore[union-attr]
    assert settings.asked == ["g1", "gx"]


async def test_what_is_not_plannable_plans_nothing_and_reads_no_settings(
    validated, catalog, galleries
):
    settings = galleries()
    planner = Planner(catalog, settings, "default")
    assert await planner(validated(accepted=False)) == []
    assert await planner(validated(is_raw=True)) == []
    assert await planner(object()) == []
    assert settings.asked == []


async def test_unread_gallery_settings_are_a_retriable_error(validated, catalog):
    never_started = GallerySettingsCache("127.0.0.1:9", "nowhere.gallery-settings", wait_s=0.1)
    planner = Planner(catalog, never_started, "default")
    with pytest.raises(GallerySettingsUnavailable) as info:
        await planner(validated())
    assert info.value.retriable
    # An event naming its profile does not need the gallery settings.
    assert await planner(validated(profile="default"))
