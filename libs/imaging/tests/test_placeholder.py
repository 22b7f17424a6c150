"""ThumbHash and dominant colour."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import pyvips

from darkroom_imaging.placeholder import (
    dominant_colour,
    placeholders,
    thumbhash_average_rgba,
    thumbhash_bytes,
)


def solid(rgb: tuple[int, int, int], w: int = 64, h: int = 48, alpha: int = 255) -> np.ndarray:
    arr = np.zeros((h, w, 4), dtype=np.uint8)
    arr[..., :3] = rgb
    arr[..., 3] = alpha
    return arr


def test_thumbhash_of_a_solid_colour_decodes_to_that_colour() -> None:
    for rgb in [(200, 30, 40), (10, 120, 220), (128, 128, 128)]:
        h = thumbhash_bytes(solid(rgb))
        r, g, b, a = thumbhash_average_rgba(h)
        assert a == 1.0
        assert abs(r * 255 - rgb[0]) < 12
        assert abs(g * 255 - rgb[1]) < 12
        assert abs(b * 255 - rgb[2]) < 12


def test_thumbhash_layout_and_alpha_flag() -> None:
    opaque = thumbhash_bytes(solid((1, 2, 3), w=100, h=50))
    assert not opaque[2] >> 7  # hasAlpha bit clear
    assert opaque[4] >> 7  # landscape bit set
    half = solid((200, 0, 0), w=40, h=40)
    half[:20, :, 3] = 0
    with_alpha = thumbhash_bytes(half)
    assert with_alpha[2] >> 7
    assert 0.3 < thumbhash_average_rgba(with_alpha)[3] < 0.7
    assert len(opaque) <= 25
    assert thumbhash_bytes(solid((1, 2, 3))) == thumbhash_bytes(solid((1, 2, 3)))


def test_thumbhash_rejects_large_or_misshapen_input() -> None:
    with pytest.raises(ValueError, match="doesn't fit"):
        thumbhash_bytes(solid((0, 0, 0), w=101, h=10))
    with pytest.raises(ValueError, match="expected an"):
        thumbhash_bytes(np.zeros((10, 10, 3), dtype=np.uint8))


def test_dominant_colour_is_the_biggest_bin_not_the_mean() -> None:
    arr = solid((220, 20, 20), w=100, h=10)
    arr[:, 60:, :3] = (20, 200, 20)
    assert dominant_colour(arr) == "#dc1414"
    arr[:, :, 3] = 0
    arr[:, 60:, 3] = 255  # only the green part is visible
    assert dominant_colour(arr) == "#14c814"


def test_placeholders_from_a_large_image() -> None:
    img = (
        pyvips.Image.black(1600, 900, bands=3)
        .linear([1, 1, 1], [30, 60, 200])
        .cast("uchar")
        .copy(interpretation="srgb")
    )
    hash64, colour = placeholders(img)
    assert colour == "#1e3cc8"
    *_, b, _ = thumbhash_average_rgba(base64.b64decode(hash64))
    assert abs(b * 255 - 200) < 12
