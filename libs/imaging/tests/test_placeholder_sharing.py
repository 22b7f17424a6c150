"""Placeholders shared by the plain ``inside`` variants of one source, and stable hashes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from darkroom_imaging.placeholder import thumbhash_bytes
from darkroom_imaging.profiles import load_profile
from darkroom_imaging.render import RenderContext, render
from darkroom_imaging.specs import VariantSpec

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
PHOTO = CORPUS / "large" / "sharp_bench_2569067123_aca715a2ee_o.jpg"


def _placeholders(specs: list[VariantSpec]) -> dict[str, tuple[str, str]]:
    result = render(PHOTO, specs, context=RenderContext(source_sha256="0" * 64))
    assert result.ok, result.failures
    return {n: (v.thumbhash, v.dominant_colour) for n, v in result.rendered.items()}


def test_inside_variants_share_the_largest_ones_placeholders_in_any_order() -> None:
    specs = list(load_profile("bench").specs)
    by_name = {s.name: s for s in specs}
    got = _placeholders(specs)
    assert got["medium"] == got["large"] == got["large_webp"]
    # The largest variant's placeholders are what it gets rendered on its own.
    assert got["large"] == _placeholders([by_name["large"]])["large"]
    # A cover crop shows less of the picture: it keeps its own.
    assert got["thumb"] != got["large"]
    assert _placeholders(specs[::-1]) == got


def test_a_flat_channel_hashes_to_zero_ac_not_to_rounding_noise() -> None:
    grey = np.full((67, 100, 4), 128, dtype=np.uint8)
    grey[..., 3] = 255
    hashed = thumbhash_bytes(grey)
    # Header (5 bytes) carries the DC and scales; every AC nibble of a flat image is 0.
    assert hashed[:3] != b"\0\0\0"
    assert set(hashed[5:]) == {0}
    # Same for the colour channels of a grey gradient (P and Q are exactly 0).
    ramp = np.zeros((67, 100, 4), dtype=np.uint8)
    ramp[..., :3] = np.linspace(0, 255, 100, dtype=np.uint8)[None, :, None]
    ramp[..., 3] = 255
    header = int.from_bytes(thumbhash_bytes(ramp)[3:5], "little")
    assert (header >> 3) & 63 == 0  # P scale
    assert (header >> 9) & 63 == 0  # Q scale
