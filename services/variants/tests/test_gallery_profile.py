"""The planner takes the gallery's profile (from the gallery-settings topic) when the event names none."""

from __future__ import annotations

import pytest

from darkroom_cli.testing.gallery import gallery_settings
from darkroom_common.errors import BrokerUnavailable
from darkroom_common.gallery_settings import GallerySettingsCache
from darkroom_imaging.profiles import load_profile
from darkroom_schemas import GallerySettingsV1, ValidatedV1, VariantRequestedV1
from darkroom_variants.agents import plan_event
from darkroom_variants.planner import plan
from darkroom_variants.settings import VariantsSettings


def validated(gallery: str = "g1", **over) -> ValidatedV1:
    fields = {"job_id": "i1", "gallery_id": gallery, "image_id": "i1", "correlation_id": "c1",
              "accepted": True, "object_key": f"originals/{gallery}/i1/a.jpg", "filename": "a.jpg",
              "sha256": "a" * 64}  # fmt: skip
    return ValidatedV1(**{**fields, **over})


def test_profile_precedence_event_then_gallery_then_default(tmp_path):
    (tmp_path / "tiny.json").write_text(
        '{"name": "tiny", "specs": [{"name": "t", "width": 8, "height": 8}]}'
    )
    (tmp_path / "wee.json").write_text(
        '{"name": "wee", "specs": [{"name": "w", "width": 4, "height": 4}]}'
    )
    by_event = plan(validated(profile="tiny"), default_profile="default", profiles_dir=tmp_path,
                    gallery_profile="wee")  # fmt: skip
    by_gallery = plan(validated(), default_profile="default", profiles_dir=tmp_path,
                      gallery_profile="wee")  # fmt: skip
    by_default = plan(validated(), default_profile="default", profiles_dir=tmp_path)
    assert [r.variant for r in by_event] == ["t"]  # type: ignore[union-attr]
    assert [r.variant for r in by_gallery] == ["w"]  # type: ignore[union-attr]
    assert {r.profile for r in by_default} == {load_profile("default").name}  # type: ignore[union-attr]


@pytest.mark.kafka
async def test_planner_uses_the_gallerys_profile_from_the_topic(kafka_bootstrap, tmp_path):
    (tmp_path / "tiny.json").write_text(
        '{"name": "tiny", "specs": [{"name": "t", "width": 8, "height": 8}]}'
    )
    settings = VariantsSettings(profiles_dir=tmp_path)
    async with gallery_settings(
        kafka_bootstrap, GallerySettingsV1(gallery_id="gp", profile="tiny")
    ) as cache:
        by_gallery = await plan_event(validated("gp"), settings, cache)
        named = await plan_event(validated("gp", profile="default"), settings, cache)
        unset = await plan_event(validated("gx"), settings, cache)
        nothing = await plan_event(validated("gp", accepted=False), settings, cache)
    assert [(e.topic, e.value.variant) for e in by_gallery] == [("variant-requested", "t")]
    default = load_profile("default")
    assert [e.value.variant for e in named] == [s.name for s in default.specs]
    assert [e.value.variant for e in unset] == [s.name for s in default.specs]
    assert all(isinstance(e.value, VariantRequestedV1) for e in [*named, *unset])
    assert nothing == []


async def test_unread_gallery_settings_are_a_retriable_error():
    settings = VariantsSettings(gallery_settings_wait_s=0.1)
    never_started = GallerySettingsCache("127.0.0.1:9", "nowhere.gallery-settings")
    with pytest.raises(BrokerUnavailable):
        await plan_event(validated(), settings, never_started)
    # An event naming its profile does not need the gallery settings.
    assert await plan_event(validated(profile="default"), settings, never_started)
