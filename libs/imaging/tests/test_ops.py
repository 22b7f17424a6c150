"""Each recipe operation has a visible effect on a real image."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvips

from darkroom_imaging.render import render
from darkroom_imaging.specs import VariantSpec

SOURCE = (
    Path(
        os.environ.get("DARKROOM_CORPUS")
        or Path(__file__).resolve().parents[4] / "shared" / "corpus"
    )
    / "large"
    / "sharp_bench_2569067123_aca715a2ee_o.jpg"
)  # 2725x2225


def out(
    recipe: list[dict[str, Any]], fit: str = "inside", w: int = 400, h: int = 400
) -> np.ndarray:
    spec = VariantSpec.model_validate(
        {"name": "o", "width": w, "height": h, "fit": fit, "format": "png", "recipe": recipe}
    )
    result = render(SOURCE, [spec])
    assert result.ok, result.failures
    img = pyvips.Image.new_from_buffer(result.rendered["o"].data, "")
    return np.ndarray(
        buffer=img.write_to_memory(), dtype=np.uint8, shape=(img.height, img.width, img.bands)
    ).astype(np.int16)


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    return out([])


def close(a: np.ndarray, b: np.ndarray, tol: float = 2.0) -> bool:
    return a.shape == b.shape and float(np.abs(a - b).mean()) < tol


def test_rotate(base: np.ndarray) -> None:
    rotated = out([{"op": "rotate", "angle": 90}])
    assert rotated.shape[:2] == (base.shape[1], base.shape[0])
    assert close(rotated, np.rot90(base, k=-1))
    assert close(out([{"op": "rotate", "angle": 180}]), base[::-1, ::-1])
    assert close(out([{"op": "rotate", "angle": 270}]), np.rot90(base, k=1))


def test_flip(base: np.ndarray) -> None:
    assert close(out([{"op": "flip", "direction": "horizontal"}]), base[:, ::-1])
    assert close(out([{"op": "flip", "direction": "vertical"}]), base[::-1])


def test_crop_is_relative_and_keeps_full_resolution_budget() -> None:
    cropped = out([{"op": "crop", "left": 0.5, "top": 0.5, "width": 0.5, "height": 0.5}])
    assert cropped.shape[:2] == (327, 400)  # 1362x1112 region fitted in 400x400
    whole = out([], w=800, h=800)
    quarter = whole[whole.shape[0] // 2 :, whole.shape[1] // 2 :]
    small = np.asarray(
        pyvips.Image.new_from_array(quarter.astype(np.uint8)).resize(400 / quarter.shape[1]).numpy()
    ).astype(np.int16)
    h = min(small.shape[0], cropped.shape[0])
    h = min(h, 320)
    right = np.abs(small[:h] - cropped[:h]).mean()
    wrong_quarter = whole[: whole.shape[0] // 2, : whole.shape[1] // 2]
    wrong = np.asarray(
        pyvips.Image.new_from_array(wrong_quarter.astype(np.uint8))
        .resize(400 / quarter.shape[1])
        .numpy()
    ).astype(np.int16)
    assert right < 10
    assert np.abs(wrong[:h, :400] - cropped[:h]).mean() > 2 * right


def test_grayscale(base: np.ndarray) -> None:
    grey = out([{"op": "grayscale"}])
    assert grey.shape == base.shape
    assert np.array_equal(grey[..., 0], grey[..., 1])
    assert np.array_equal(grey[..., 1], grey[..., 2])
    assert np.abs(base[..., 0] - base[..., 2]).mean() > 5


def test_sepia(base: np.ndarray) -> None:
    sepia = out([{"op": "sepia"}])
    r, g, b = (sepia[..., i].astype(float) for i in range(3))
    assert (r >= g).mean() > 0.95
    assert (g >= b).mean() > 0.95
    assert not close(sepia, base)


def _detail(img: np.ndarray) -> float:
    grey = img[..., :3].mean(axis=2)
    return float(np.abs(np.diff(grey, axis=1)).mean())


def test_blur_and_sharpen(base: np.ndarray) -> None:
    assert _detail(out([{"op": "blur", "sigma": 3}])) < 0.6 * _detail(base)
    assert _detail(out([{"op": "sharpen", "sigma": 1.5}])) > 1.1 * _detail(base)


def test_negate(base: np.ndarray) -> None:
    assert close(out([{"op": "negate"}]), 255 - base, tol=0.5)


def test_normalize_stretches_contrast() -> None:
    dull = out([{"op": "blur", "sigma": 1}, {"op": "normalize"}])
    before = out([{"op": "blur", "sigma": 1}])
    lum_b, lum_a = before.mean(axis=2), dull.mean(axis=2)
    spread_b = np.percentile(lum_b, 99) - np.percentile(lum_b, 1)
    spread_a = np.percentile(lum_a, 99) - np.percentile(lum_a, 1)
    assert spread_a > spread_b + 10
    assert spread_a > 215


def test_border_paints_the_edge_inside_the_bounds(base: np.ndarray) -> None:
    framed = out([{"op": "border", "width": 10, "colour": "#ff0000"}])
    assert framed.shape == base.shape
    edge = np.concatenate([framed[:10].reshape(-1, 3), framed[:, -10:].reshape(-1, 3)])
    assert (edge == [255, 0, 0]).all()
    assert close(framed[10:-10, 10:-10], base[10:-10, 10:-10], tol=0.01)


def test_text_overlay_changes_the_centre(base: np.ndarray) -> None:
    texted = out([{"op": "text", "text": "HELLO", "position": "centre", "size": 0.5}])
    h, w = base.shape[:2]
    centre = (slice(h // 3, 2 * h // 3), slice(w // 4, 3 * w // 4))
    assert np.abs(texted[centre] - base[centre]).mean() > 10
    assert np.array_equal(texted[: h // 5], base[: h // 5])


def test_geometry_ops_run_before_the_fit_so_cover_stays_exact() -> None:
    img = out(
        [
            {"op": "rotate", "angle": 90},
            {"op": "crop", "left": 0, "top": 0, "width": 1, "height": 0.3},
        ],
        fit="cover",
        w=300,
        h=200,
    )
    assert img.shape[:2] == (200, 300)
