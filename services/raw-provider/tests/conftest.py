"""Fixtures of the provider tests: the fake Imagen server (:mod:`darkroom_raw_provider.testing`)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from darkroom_raw_provider.testing import FakeImagen, serve

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
DEVELOPED = CORPUS / "orientation" / "Landscape_1.jpg"


@pytest_asyncio.fixture
async def imagen() -> AsyncIterator[FakeImagen]:
    """A running fake provider on 127.0.0.1 (a free port); ``imagen.base_url`` + ``/v1`` is the API."""
    fake = FakeImagen(developed=DEVELOPED.read_bytes())
    async with serve(fake):
        yield fake


@pytest.fixture
def corpus() -> Path:
    """The shared corpus folder."""
    return CORPUS
