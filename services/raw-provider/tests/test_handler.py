"""The stage's handler picks the provider by the gallery's settings, read from the real topic."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from darkroom_common.gallery_settings import GallerySettingsCache
from darkroom_common.metrics import Metrics
from darkroom_common.ports import GallerySettingsUnavailable, SystemClock
from darkroom_common.storage import FilesystemStore
from darkroom_dev.testing.gallery import gallery_settings
from darkroom_raw_provider.app import build_app
from darkroom_raw_provider.develop import DevelopHandler, LocalProvider
from darkroom_raw_provider.imagen import ImagenProvider
from darkroom_raw_provider.settings import ImagenSettings, RawProviderSettings
from darkroom_schemas import GallerySettingsV1, ProbeInfo, ValidatedV1
from darkroom_schemas.topics import stage

pytestmark = [pytest.mark.kafka]
METRICS = Metrics.of(REGISTRY)
API_KEY = "sk-imagen-test-7f3a9c0e51d24b68"


def raw_event(gallery: str, image: str, key: str, **over) -> ValidatedV1:
    fields = {
        "job_id": image, "gallery_id": gallery, "image_id": image, "correlation_id": "c1",
        "accepted": True, "object_key": key, "filename": key.rsplit("/", 1)[1],
        "sha256": "0" * 64, "is_raw": True,
        "probe": ProbeInfo(format="dng", mime_type="image/x-adobe-dng", width=1072,
                           height=960, pixels=1072 * 960),
    }  # fmt: skip
    return ValidatedV1(**{**fields, **over})


async def test_imagen_gallery_goes_to_the_external_provider_and_local_stays_local(
    kafka_bootstrap, imagen, corpus, tmp_path
):
    store = FilesystemStore(tmp_path / "store")
    data = (corpus / "raw" / "dng_lg-h815_skia_sample_1mp.dng").read_bytes()
    for gallery in ("gi", "gl"):
        await store.put(f"originals/{gallery}/i1/sample.dng", data)
    settings = RawProviderSettings(work_dir=str(tmp_path))
    imagen_settings = ImagenSettings(
        base_url=f"{imagen.base_url}/v1", api_key=SecretStr(API_KEY), poll_initial_s=0.01
    )
    providers = {
        "local": LocalProvider(store, settings, METRICS),
        "imagen": ImagenProvider(store, imagen_settings, metrics=METRICS),
    }
    async with gallery_settings(
        kafka_bootstrap,
        GallerySettingsV1(gallery_id="gi", processing_provider="imagen"),
        GallerySettingsV1(gallery_id="gl", processing_provider="local"),
    ) as cache:
        handler = DevelopHandler(providers, cache, METRICS, SystemClock())
        timed = {"provider": "local", "outcome": "accepted"}
        developed = REGISTRY.get_sample_value("darkroom_raw_develop_seconds_count", timed) or 0.0
        written = (
            REGISTRY.get_sample_value("darkroom_object_bytes_total", {"direction": "write"}) or 0.0
        )

        [external] = await handler(raw_event("gi", "i1", "originals/gi/i1/sample.dng"))
        assert external.accepted, external.reason_message
        [project] = imagen.uploads
        assert external.provider_job_id == project
        assert external.derived_from == "originals/gi/i1/sample.dng"
        assert await store.get_bytes("masters/gi/i1/master.jpg") == imagen.developed

        [local] = await handler(raw_event("gl", "i1", "originals/gl/i1/sample.dng"))
        assert local.accepted, local.reason_message
        assert local.provider_job_id is None
        assert len(imagen.uploads) == 1  # the local gallery never reached the provider
        assert await store.get_bytes("masters/gl/i1/master.jpg") != imagen.developed
        # The local development was timed and its master counted as bytes written.
        assert (
            REGISTRY.get_sample_value("darkroom_raw_develop_seconds_count", timed) == developed + 1
        )
        master_bytes = (await store.head("masters/gl/i1/master.jpg")).size
        assert (
            REGISTRY.get_sample_value("darkroom_object_bytes_total", {"direction": "write"}) or 0
        ) >= written + master_bytes

        # A master (derived_from set) or a raster upload is not developed again.
        assert await handler(external) == []
        assert await handler(raw_event("gi", "i2", "k/x.jpg", is_raw=False)) == []

        # A gallery asking for a provider this deployment lacks fails its job, clearly.
        bare = DevelopHandler({"local": providers["local"]}, cache, METRICS, SystemClock())
        [refused] = await bare(raw_event("gi", "i1", "originals/gi/i1/sample.dng"))
        assert (refused.accepted, refused.reason_code) == (False, "provider_not_configured")
    await providers["imagen"].aclose()


async def test_unread_gallery_settings_are_a_retriable_error(tmp_path):
    store = FilesystemStore(tmp_path / "store")
    never_started = GallerySettingsCache("127.0.0.1:9", "nowhere.gallery-settings", wait_s=0.1)
    handler = DevelopHandler(
        {"local": LocalProvider(store, RawProviderSettings(), METRICS)},
        never_started,
        METRICS,
        SystemClock(),
    )
    with pytest.raises(GallerySettingsUnavailable) as info:
        await handler(raw_event("g1", "i1", "originals/g1/i1/sample.dng"))
    assert info.value.retriable


def test_every_consumed_topic_has_a_route(tmp_path):
    settings = RawProviderSettings(topic_prefix="wired.", data_dir=tmp_path)
    app = build_app(settings)
    assert "image-deleted" in stage("raw-provider").consumes
    assert app.topics == sorted(f"wired.{t}" for t in stage("raw-provider").consumes)
