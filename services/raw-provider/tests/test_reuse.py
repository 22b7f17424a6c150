"""A master is developed once per RAW bytes, provider and policy; a re-sent event reuses it.

The corpus CR2 is developed by the real local provider into a filesystem store; the
handler is called again with the same event (a redelivery), then with another
development policy and another provider. The providers are the real ones, wrapped
only to count their ``develop`` calls; the gallery settings are a tiny fake.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from darkroom_common.metrics import Metrics
from darkroom_common.ports import SystemClock
from darkroom_common.storage import FilesystemStore, ObjectInfo
from darkroom_raw_provider.develop import DevelopHandler, LocalProvider
from darkroom_raw_provider.imagen import ImagenProvider
from darkroom_raw_provider.providers import RawProvider, reused_master
from darkroom_raw_provider.settings import ImagenSettings, RawProviderSettings
from darkroom_schemas import GallerySettingsV1, ProbeInfo, ValidatedV1, utcnow

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
CR2 = CORPUS / "raw" / "cr2_canon_img5952.cr2"
RAW_KEY = "originals/g1/i1/IMG_5952.CR2"
MASTER_KEY = "masters/g1/i1/master.jpg"
API_KEY = "sk-imagen-test-7f3a9c0e51d24b68"  # the fake server's key (testing.API_KEY)


class Counted:
    """A real provider whose ``develop`` calls are counted."""

    def __init__(self, inner: RawProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    def policy(self, event: ValidatedV1) -> str:
        return self.inner.policy(event)

    async def develop(self, event: ValidatedV1) -> ValidatedV1:
        self.calls += 1
        return await self.inner.develop(event)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Galleries:
    """The gallery-settings port: one gallery whose provider a test may change."""

    def __init__(self) -> None:
        self.provider = "local"

    async def get(self, gallery_id: str) -> GallerySettingsV1:
        return GallerySettingsV1(gallery_id=gallery_id, processing_provider=self.provider)


def raw_event(sha256: str) -> ValidatedV1:
    """The accepted ``validated`` event of the CR2 (the probe ingest reports for it)."""
    return ValidatedV1(
        job_id="i1", gallery_id="g1", image_id="i1", correlation_id="c1", accepted=True,
        object_key=RAW_KEY, filename="IMG_5952.CR2", sha256=sha256, is_raw=True,
        probe=ProbeInfo(format="cr2", mime_type="image/x-canon-cr2", width=3522, height=2348,
                        pixels=3522 * 2348),
    )  # fmt: skip


def reused(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value(
        "darkroom_redelivery_reused_total", {"service": "raw-provider", "kind": "master"}
    )
    return value or 0.0


def developed(metrics: Metrics, provider: str) -> float:
    value = metrics.registry.get_sample_value(
        "darkroom_raw_develop_seconds_count", {"provider": provider, "outcome": "accepted"}
    )
    return value or 0.0


def same_event(a: ValidatedV1, b: ValidatedV1) -> bool:
    """Equal but for the envelope's event_id and occurred_at."""
    skip = {"event_id", "occurred_at"}
    return a.model_dump(exclude=skip) == b.model_dump(exclude=skip)


@pytest.fixture
async def setup(tmp_path: Path) -> Any:
    store = FilesystemStore(tmp_path / "store")
    data = CR2.read_bytes()
    await store.put(RAW_KEY, data)
    return store, hashlib.sha256(data).hexdigest()


async def test_a_re_sent_raw_is_not_developed_again_and_its_master_is_kept(setup, tmp_path):
    store, sha = setup
    metrics = Metrics(CollectorRegistry())
    local = Counted(LocalProvider(store, RawProviderSettings(work_dir=str(tmp_path)), metrics))
    handler = DevelopHandler({"local": local}, Galleries(), metrics, SystemClock(), store=store)

    [first] = await handler(raw_event(sha))
    assert first.accepted, first.reason_message
    master = await store.get_bytes(MASTER_KEY)
    assert hashlib.sha256(master).hexdigest() == first.sha256
    meta = (await store.head(MASTER_KEY)).metadata
    assert (meta["source-sha256"], meta["provider"]) == (sha, "local")
    assert meta["development-policy"].startswith("embedded-preview;")

    [again] = await handler(raw_event(sha))  # redelivered (or re-sent by ingest)
    assert same_event(again, first)
    assert local.calls == 1
    assert (developed(metrics, "local"), reused(metrics)) == (1, 1)
    assert await store.get_bytes(MASTER_KEY) == master

    # Other RAW bytes under the same key (a retried re-upload): developed again.
    [other] = await handler(raw_event("f" * 64))
    assert other.accepted
    assert (local.calls, reused(metrics)) == (2, 1)


async def test_another_policy_or_provider_develops_again(setup, tmp_path, imagen):
    store, sha = setup
    metrics = Metrics(CollectorRegistry())
    galleries = Galleries()
    base = RawProviderSettings(work_dir=str(tmp_path))
    first_local = Counted(LocalProvider(store, base, metrics))
    await DevelopHandler({"local": first_local}, galleries, metrics, SystemClock(), store=store)(
        raw_event(sha)
    )
    preview = await store.get_bytes(MASTER_KEY)

    # The deployment changed its JPEG quality: a new master.
    requality = Counted(
        LocalProvider(store, base.model_copy(update={"master_quality": 70}), metrics)
    )
    handler = DevelopHandler({"local": requality}, galleries, metrics, SystemClock(), store=store)
    [lower] = await handler(raw_event(sha))
    assert (requality.calls, reused(metrics)) == (1, 0)
    assert lower.sha256 != hashlib.sha256(preview).hexdigest()
    [same] = await handler(raw_event(sha))  # and that new master is the one reused
    assert same_event(same, lower)
    assert (requality.calls, reused(metrics)) == (1, 1)

    # The gallery switched to the external provider: developed there.
    external = Counted(
        ImagenProvider(
            store,
            ImagenSettings(
                base_url=f"{imagen.base_url}/v1", api_key=SecretStr(API_KEY), poll_initial_s=0.01
            ),
            metrics=metrics,
            work_dir=str(tmp_path),
        )
    )
    galleries.provider = "imagen"
    handler = DevelopHandler(
        {"local": requality, "imagen": external}, galleries, metrics, SystemClock(), store=store
    )
    [by_imagen] = await handler(raw_event(sha))
    assert by_imagen.accepted, by_imagen.reason_message
    assert (external.calls, len(imagen.uploads)) == (1, 1)
    [again] = await handler(raw_event(sha))
    assert same_event(again, by_imagen)
    assert again.provider_job_id == by_imagen.provider_job_id is not None
    assert (external.calls, len(imagen.uploads), reused(metrics)) == (1, 1, 2)
    await external.aclose()


def test_a_master_without_matching_metadata_is_not_reused():
    event = raw_event("a" * 64)
    meta = {
        "source-sha256": "a" * 64, "provider": "local", "development-policy": "p",
        "master-sha256": "b" * 64, "width": "1728", "height": "1152",
    }  # fmt: skip
    info = ObjectInfo(MASTER_KEY, 10, "e", "image/jpeg", utcnow(), meta)
    master = reused_master(event, info, provider="local", policy="p")
    assert master is not None
    assert (master.probe.width, master.sha256, master.derived_from) == (1728, "b" * 64, RAW_KEY)
    assert reused_master(event, info, provider="imagen", policy="p") is None
    assert reused_master(event, info, provider="local", policy="q") is None
    for missing in ("width", "source-sha256"):
        partial = {k: v for k, v in meta.items() if k != missing}
        info = ObjectInfo(MASTER_KEY, 10, "e", "image/jpeg", utcnow(), partial)
        assert reused_master(event, info, provider="local", policy="p") is None
    garbled = ObjectInfo(MASTER_KEY, 10, "e", "image/jpeg", utcnow(), {**meta, "width": "wide"})
    assert reused_master(event, garbled, provider="local", policy="p") is None
