"""Fixtures of the variants tests: real corpus images in a filesystem store, tiny fakes at the edge.

* ``store``: a :class:`FilesystemStore` in ``tmp_path``; ``metrics``: families in a
  fresh registry, so counts start at zero.
* ``catalog``: the built-in profiles plus ``tiny`` (two small specs, fast to render).
* ``put_source``: copies a corpus image into the store as an image's original and
  returns its variant requests (planned with a profile of ``catalog``).
* ``galleries``: a fake gallery-settings port (``async get``), recording its calls.
* ``clock``: a monotonic clock that moves only when a test advances it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from darkroom_common.metrics import Metrics
from darkroom_common.storage import FilesystemStore
from darkroom_imaging.profiles import ProfileCatalog
from darkroom_schemas import GallerySettingsV1, ImageMetadata, ValidatedV1, VariantRequestedV1
from darkroom_variants.planner import plan
from darkroom_variants.settings import VariantsSettings
from darkroom_variants.worker import Renderer

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
TINY = {
    "name": "tiny",
    "specs": [
        {"name": "t", "width": 64, "height": 64, "fit": "cover", "format": "jpeg"},
        {"name": "w", "width": 96, "height": 96, "fit": "inside", "format": "webp"},
    ],
}


@pytest.fixture
def corpus() -> Path:
    """The shared corpus folder."""
    return CORPUS


@pytest.fixture
def store(tmp_path: Path) -> FilesystemStore:
    """An empty filesystem store."""
    return FilesystemStore(tmp_path / "store")


@pytest.fixture
def metrics() -> Metrics:
    """The metric families, in a registry of this test alone."""
    return Metrics(CollectorRegistry())


@pytest.fixture
def profiles_dir(tmp_path: Path) -> Path:
    """A profiles folder holding ``tiny.json``."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "tiny.json").write_text(json.dumps(TINY))
    return folder


@pytest.fixture
def catalog(profiles_dir: Path) -> ProfileCatalog:
    """The built-in profiles and ``tiny``."""
    return ProfileCatalog(profiles_dir)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    """A one-thread render pool."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="test-render")
    yield pool
    pool.shutdown()


@pytest.fixture
def renderer(store: FilesystemStore, executor: ThreadPoolExecutor, metrics: Metrics) -> Renderer:
    """A renderer on ``store`` with the default settings."""
    return Renderer(store, VariantsSettings(), executor, metrics)


@pytest.fixture
def validated() -> Callable[..., ValidatedV1]:
    """Build an accepted ``ValidatedV1`` of image ``g1/i1`` (fields overridable)."""

    def make(key: str = "originals/g1/i1/a.jpg", **over: Any) -> ValidatedV1:
        image = over.pop("image_id", "i1")
        fields = {
            "job_id": image, "gallery_id": "g1", "image_id": image, "correlation_id": "c1",
            "accepted": True, "object_key": key, "filename": key.rsplit("/", 1)[1],
            "sha256": "a" * 64, "metadata": ImageMetadata(artist="Ada", copyright="© Ada"),
        }  # fmt: skip
        return ValidatedV1(**{**fields, **over})

    return make


@pytest.fixture
def put_source(
    store: FilesystemStore, catalog: ProfileCatalog, validated: Callable[..., ValidatedV1]
) -> Callable[..., Awaitable[list[VariantRequestedV1]]]:
    """``await put_source(rel, image="i1", profile="tiny")``: store a corpus image, plan it."""

    async def make(
        rel: str, *, image: str = "i1", profile: str = "tiny"
    ) -> list[VariantRequestedV1]:
        key = f"originals/g1/{image}/{Path(rel).name}"
        await store.put(key, (CORPUS / rel).read_bytes())
        planned = plan(
            validated(key, image_id=image, sha256=f"{ord(image[-1]):064x}"),
            catalog,
            default_profile=profile,
        )
        assert isinstance(planned, list), planned
        return planned

    return make


class FakeGalleries:
    """The gallery-settings port with fixed profiles; ``asked`` lists the galleries read."""

    def __init__(self, profiles: dict[str, str]) -> None:
        self.profiles = profiles
        self.asked: list[str] = []

    async def get(self, gallery_id: str) -> GallerySettingsV1:
        """Return the gallery's settings (its profile when one was given)."""
        self.asked.append(gallery_id)
        return GallerySettingsV1(gallery_id=gallery_id, profile=self.profiles.get(gallery_id))


@pytest.fixture
def galleries() -> Callable[..., FakeGalleries]:
    """``galleries(g1="tiny")``: a fake gallery-settings port with those profiles."""
    return lambda **profiles: FakeGalleries(profiles)


class FakeClock:
    """A clock standing still until :meth:`advance` moves it."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> datetime:
        """Return a fixed UTC time plus the advanced seconds."""
        return datetime.fromtimestamp(self.t, UTC)

    def monotonic(self) -> float:
        """Return the current reading, seconds."""
        return self.t

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves."""
    return FakeClock()
