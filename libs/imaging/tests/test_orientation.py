"""EXIF orientation: all 8 values (and the invalid 0) come out upright."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import pyvips

from darkroom_imaging.render import render
from darkroom_imaging.specs import VariantSpec

CORPUS = (
    Path(
        os.environ.get("DARKROOM_CORPUS")
        or Path(__file__).resolve().parents[4] / "shared" / "corpus"
    )
    / "orientation"
)
SPEC = VariantSpec(name="o", width=300, height=300, format="png")


def pixels(path: Path) -> tuple[np.ndarray, int]:
    result = render(path, [SPEC])
    img = pyvips.Image.new_from_buffer(result.rendered["o"].data, "")
    arr = np.ndarray(
        buffer=img.write_to_memory(), dtype=np.uint8, shape=(img.height, img.width, img.bands)
    )
    assert result.decode is not None
    return arr.astype(np.int16), result.decode.orientation


@pytest.mark.parametrize("kind", ["Landscape", "Portrait"])
def test_all_orientations_match_the_upright_reference(kind: str) -> None:
    reference, _ = pixels(CORPUS / f"{kind}_1.jpg")
    assert (reference.shape[1] > reference.shape[0]) == (kind == "Landscape")
    for n in range(9):
        out, orientation = pixels(CORPUS / f"{kind}_{n}.jpg")
        assert orientation == (n or 1)
        assert out.shape == reference.shape, n
        diff = np.abs(out - reference).mean()
        assert diff < 6, (kind, n, diff)
        if n in (2, 3, 4, 5, 7):
            # without applying the tag the picture would be mirrored/upside down
            wrong = np.abs(out[:, ::-1] - reference).mean()
            assert wrong > 4 * diff + 10, (kind, n, wrong)
