"""The phone and camera formats of issue 13 through the whole pipeline, in one run.

The four services as processes on the real broker; one upload each of the iPhone HEIC
(HEVC, decoded by pillow-heif), the JPEG XL (pillow-jxl), the 10-bit PQ AVIF, the Pixel
Ultra HDR JPEG (Display P3) and the CMYK JPEG without a profile. Every job must complete
with every variant of the default profile at the right size and orientation. HDR tone
mapping and CMYK colour are judged elsewhere (their engine tests); here only what the
pipeline owes every photo: completion, sizes, orientation, sRGB output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pillow_heif
import pytest
import pyvips
from PIL import Image

from darkroom_dev.local.pipeline import LocalPipeline
from darkroom_imaging.probe import icc_description
from darkroom_imaging.profiles import load_profile

from .conftest import CORPUS, run_files, start_pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

DEFAULT = load_profile("default")
BOUNDS = {s.name: (s.width, s.height, s.fit) for s in DEFAULT.specs}

#: corpus path -> display size (width, height) of the photo.
FILES = {
    "formats/heic_iphone.heic": (4032, 3024),
    "formats/jxl_8bit_srgb.jxl": (1440, 1080),
    "formats/avif_10bit_hdr_p3_nclx.avif": (3681, 5594),
    "formats/icc_displayp3_ultrahdr_pixel6pro.jpg": (4080, 3072),
    "formats/cmyk_no_icc.jpg": (500, 333),
}


def _inside(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    scale = min(1.0, box_w / width, box_h / height)
    return round(width * scale), round(height * scale)


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap, tmp_path_factory):
    p = start_pipeline(kafka_bootstrap, tmp_path_factory.mktemp("new-formats"))
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="module")
def outcomes(pipeline: LocalPipeline):
    return run_files(
        pipeline, [CORPUS / rel for rel in FILES], gallery="new-formats", timeout_s=120
    )


def test_every_new_format_completes_with_every_variant_at_its_size(outcomes, pipeline):
    wrong = {
        rel: (end.status, end.reason, end.cataloged.reason_message if end.cataloged else None)
        for rel in FILES
        if (end := outcomes[Path(rel).name][1]).status != "complete"
    }
    assert not wrong
    for rel, (width, height) in FILES.items():
        cataloged = outcomes[Path(rel).name][1].cataloged
        assert cataloged is not None
        assert sorted(v.name for v in cataloged.variants) == sorted(BOUNDS), rel
        for v in cataloged.variants:
            box_w, box_h, fit = BOUNDS[v.name]
            expected = (box_w, box_h) if fit == "cover" else _inside(width, height, box_w, box_h)
            assert (v.width, v.height) == expected, (rel, v.name)
            image = pyvips.Image.new_from_file(str(pipeline.path(v.object_key)))
            assert (image.width, image.height) == expected, (rel, v.name)
            assert image.bands == 3, (rel, v.name)
            assert "sRGB" in (icc_description(image.get("icc-profile-data")) or ""), (rel, v)
        assert cataloged.thumbhash, rel


def test_heic_large_variant_is_the_upright_photo(outcomes, pipeline):
    cataloged = outcomes["heic_iphone.heic"][1].cataloged
    large = next(v for v in cataloged.variants if v.name == "large")
    assert (large.width, large.height) == (1440, 1080)  # landscape 4:3 like the file
    image = pyvips.Image.new_from_file(str(pipeline.path(large.object_key)))
    got = np.ndarray(
        buffer=image.write_to_memory(), dtype=np.uint8, shape=(1080, 1440, image.bands)
    ).astype(np.int16)
    # pillow-heif's own decode (irot/imir applied, EXIF Orientation 1), colour left in P3:
    # upright and the same picture, so the difference is the colour conversion and JPEG.
    with pillow_heif.open_heif(CORPUS / "formats/heic_iphone.heic").to_pillow() as im:
        ref = np.asarray(im.convert("RGB").resize((1440, 1080), Image.Resampling.LANCZOS))
    diff = float(np.abs(got - ref.astype(np.int16)).mean())
    flipped = float(np.abs(got - ref[::-1, ::-1].astype(np.int16)).mean())
    assert diff < 8, diff
    assert flipped > 3 * diff, (diff, flipped)


def test_metadata_of_the_heic_reaches_the_catalog(outcomes):
    meta = outcomes["heic_iphone.heic"][1].cataloged.metadata
    assert meta is not None
    assert (meta.make, meta.model) == ("Apple", "iPhone 7")
