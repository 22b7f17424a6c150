"""Large RAW files: 36 MP and 60 MP Bayer DNGs built from a real photo, developed under the cap.

The DNGs are made at test time (PiDNG, uncompressed 16-bit CFA, RGGB; its 14-bit packing is broken for these widths) from the corpus photo
``jpeg/exif_lens_gps_iphone6.jpg`` upscaled to the sensor size, linearised (sRGB curve
inverted) and mosaicked; the colour matrix is XYZ→linear sRGB, so the camera space is linear
sRGB and a correct development looks like the photo. Each is developed with the pipeline's
defaults (``embedded-preview`` policy, which falls back to demosaicing since the DNG has no
preview; master long edge for a 1920×1080 box; the raw-provider's 3 GiB memory cap).

Each case takes about 10 s (build about 3 s / 9 s, development 5 s / 9 s on 2 cores), so
both run by default; ``DARKROOM_RAW_SIZE_TESTS`` (comma-separated, default ``36,60``)
picks the cases, and ``bench/raw_size_bench.py`` prints the figures for both.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyvips
from pidng.core import RAW2DNG, DNGTags, Tag
from pidng.defs import CFAPattern, DNGVersion, PhotometricInterpretation

from darkroom_imaging.raw import (
    DEFAULT_MASTER_BOX,
    DEFAULT_POLICY,
    Developed,
    develop,
    master_long_edge,
)

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
PHOTO = CORPUS / "jpeg/exif_lens_gps_iphone6.jpg"
#: The raw-provider's default ``max_memory_bytes``.
PROVIDER_MEMORY_CAP = 3 * 1024**3
SIZES = {"36": (7360, 4912), "60": (9504, 6336)}
ENABLED = set(os.environ.get("DARKROOM_RAW_SIZE_TESTS", "36,60").replace(" ", "").split(","))

# XYZ (D65) -> linear sRGB (IEC 61966-2-1), as DNG ColorMatrix1 rationals (x 10000).
_XYZ_TO_SRGB = [3.2406, -1.5372, -0.4986, -0.9689, 1.8758, 0.0415, 0.0557, -0.2040, 1.0570]
_BITS = 16


def bayer_dng(photo: Path, width: int, height: int, out: Path) -> Path:
    """Write ``out``: an uncompressed 16-bit RGGB DNG of ``photo`` resized to width×height.

    The photo (any libvips-readable image, sRGB) is resized to cover width×height and
    cropped to it, linearised, scaled to 16 bits (black 0, white 65535) and sampled into
    an RGGB mosaic. Returns ``out``. Memory: about 14 bytes per pixel at the peak.
    """
    image = pyvips.Image.new_from_file(str(photo)).autorot().extract_band(0, n=3)
    scale = max(width / image.width, height / image.height)
    image = image.resize(scale, kernel="linear").crop(0, 0, width, height)
    rgb = image.numpy()  # H x W x 3 uint8
    lut = np.arange(256, dtype=np.float32) / 255.0
    lut = np.where(lut <= 0.04045, lut / 12.92, ((lut + 0.055) / 1.055) ** 2.4)
    lut16 = np.round(lut * ((1 << _BITS) - 1)).astype(np.uint16)
    mosaic = np.empty((height, width), dtype=np.uint16)
    mosaic[0::2, 0::2] = lut16[rgb[0::2, 0::2, 0]]
    mosaic[0::2, 1::2] = lut16[rgb[0::2, 1::2, 1]]
    mosaic[1::2, 0::2] = lut16[rgb[1::2, 0::2, 1]]
    mosaic[1::2, 1::2] = lut16[rgb[1::2, 1::2, 2]]
    del rgb
    tags = DNGTags()
    tags.set(Tag.ImageWidth, width)
    tags.set(Tag.ImageLength, height)
    tags.set(Tag.TileWidth, width)
    tags.set(Tag.TileLength, height)
    tags.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    tags.set(Tag.SamplesPerPixel, 1)
    tags.set(Tag.BitsPerSample, _BITS)
    tags.set(Tag.CFARepeatPatternDim, [2, 2])
    tags.set(Tag.CFAPattern, CFAPattern.RGGB)
    tags.set(Tag.BlackLevel, 0)
    tags.set(Tag.WhiteLevel, (1 << _BITS) - 1)
    tags.set(Tag.ColorMatrix1, [[round(v * 10000), 10000] for v in _XYZ_TO_SRGB])
    tags.set(Tag.CalibrationIlluminant1, 21)  # D65
    tags.set(Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]])
    tags.set(Tag.Make, "Darkroom")
    tags.set(Tag.Model, f"Synthetic {width}x{height}")
    tags.set(Tag.DNGVersion, DNGVersion.V1_4)
    tags.set(Tag.DNGBackwardVersion, DNGVersion.V1_2)
    writer = RAW2DNG()
    writer.options(tags, path="", compress=False)
    writer.convert(mosaic, filename=str(out.with_suffix("")))
    return out


def develop_like_the_pipeline(path: Path, width: int, height: int) -> Developed:
    """Develop ``path`` as the raw-provider does by default; fail the test on a Failure."""
    result = develop(
        path,
        policy=DEFAULT_POLICY,
        min_long_edge=master_long_edge(width, height, 1, DEFAULT_MASTER_BOX),
        max_memory_bytes=PROVIDER_MEMORY_CAP,
    )
    assert isinstance(result, Developed), result
    return result


def _luma(image: pyvips.Image, size: int = 256) -> np.ndarray:
    small = image.thumbnail_image(size, height=size, size="force").colourspace("b-w")
    return small.numpy().astype(np.float32).ravel()


@pytest.mark.parametrize("megapixels", sorted(SIZES))
def test_large_bayer_dng_develops_within_the_memory_cap(megapixels: str, tmp_path: Path) -> None:
    if megapixels not in ENABLED:
        pytest.skip(f"set DARKROOM_RAW_SIZE_TESTS={megapixels} to run the {megapixels} MP case")
    width, height = SIZES[megapixels]
    dng = bayer_dng(PHOTO, width, height, tmp_path / f"synthetic_{megapixels}mp.dng")
    dev = develop_like_the_pipeline(dng, width, height)
    assert dev.provenance["decode_path"] == "develop-half"
    assert (dev.width, dev.height) == (width // 2, height // 2)
    peak = dev.provenance["child_peak_rss_bytes"]
    assert 0 < peak <= PROVIDER_MEMORY_CAP
    # Half-size development: measured about 11 bytes per sensor pixel (383 MiB at 36 MP,
    # 595 MiB at 60 MP); full-size development needs about 29.
    assert peak < 16 * width * height, peak
    # The master is the photo: its luminance follows the source's (Pearson r on 256x256).
    master = pyvips.Image.jpegload_buffer(dev.jpeg)
    source = pyvips.Image.new_from_file(str(PHOTO)).autorot()
    source = source.crop(0, 0, source.width, round(source.width * height / width))
    r = float(np.corrcoef(_luma(master), _luma(source))[0, 1])
    assert r > 0.9, r


def test_the_childs_peak_is_its_own_not_its_big_parents() -> None:
    """Linux keeps ``ru_maxrss`` across fork and exec: a 1 GiB parent must not show in it."""
    script = (
        "import json, sys\n"
        "from darkroom_imaging.raw import develop\n"
        "ballast = bytearray(1 << 30)\n"
        "ballast[:: 4096] = b'x' * len(ballast[:: 4096])\n"
        "dev = develop(sys.argv[1], policy='develop')\n"
        "print(json.dumps(dev.provenance['child_peak_rss_bytes']))\n"
    )
    small = CORPUS / "raw" / "synthetic_oiio_valid-32x32.dng"
    done = subprocess.run(
        [sys.executable, "-c", script, str(small)], capture_output=True, text=True, check=True
    )
    peak = int(done.stdout.strip())
    assert 10 * 2**20 < peak < 400 * 2**20, peak
