"""Fixtures of the ingest tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from darkroom_ingest.testing import make_topics, new_prefix

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)


@pytest.fixture
def corpus_jpeg() -> Path:
    """A small real JPEG from the shared corpus."""
    path = CORPUS / "jpeg" / "exif_gps_nikon_coolpix_p6000.jpg"
    assert path.is_file(), f"corpus file missing: {path}"
    return path


@pytest.fixture
def kafka_prefix(kafka_bootstrap: str) -> str:
    """A fresh topic prefix with every registry topic created."""
    prefix = new_prefix()
    make_topics(kafka_bootstrap, prefix)
    return prefix
