"""Colour: ICC → sRGB, CMYK, 16-bit, alpha, animation, watermark."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import pyvips
from PIL import Image, ImageCms

from darkroom_imaging.render import RenderContext, render
from darkroom_imaging.specs import VariantSpec, Watermark

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)


def array(data: bytes) -> np.ndarray:
    img = pyvips.Image.new_from_buffer(data, "")
    return np.ndarray(
        buffer=img.write_to_memory(), dtype=np.uint8, shape=(img.height, img.width, img.bands)
    ).astype(np.int16)


def one(path: str, spec: VariantSpec, **ctx: object) -> bytes:
    result = render(CORPUS / path, [spec], context=RenderContext(**ctx))  # type: ignore[arg-type]
    assert result.ok, result.failures
    return result.rendered[spec.name].data


def littlecms_reference(path: str, size: tuple[int, int]) -> np.ndarray:
    """Pillow + LittleCMS: embedded profile (or none) → sRGB, resized to ``size``."""
    pil = Image.open(CORPUS / path)
    src = ImageCms.ImageCmsProfile(io.BytesIO(pil.info["icc_profile"]))
    rgb = ImageCms.profileToProfile(
        pil,
        src,
        ImageCms.createProfile("sRGB"),
        outputMode="RGB",
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
    )
    assert rgb is not None
    return np.asarray(rgb.resize(size, Image.Resampling.LANCZOS)).astype(np.int16)


@pytest.mark.parametrize(
    "path",
    [
        "formats/icc_adobergb_canon_eos7d.jpg",
        "formats/icc_displayp3_ultrahdr_pixel6pro.jpg",
        "formats/cmyk_swop_icc.jpg",
    ],
)
def test_embedded_profiles_convert_like_littlecms(path: str) -> None:
    spec = VariantSpec(name="p", width=400, height=400, format="png")
    out = array(one(path, spec))
    ref = littlecms_reference(path, (out.shape[1], out.shape[0]))
    assert np.abs(out[..., :3] - ref).mean() < 4
    # and the conversion did something: the untransformed pixels differ more
    raw = pyvips.Image.new_from_file(str(CORPUS / path))
    if raw.bands == 3:
        untouched = np.asarray(
            Image.open(CORPUS / path).resize((out.shape[1], out.shape[0]))
        ).astype(np.int16)
        assert np.abs(untouched - ref).mean() > np.abs(out[..., :3] - ref).mean()


def test_cmyk_without_profile_uses_a_fallback_close_to_the_profiled_file() -> None:
    spec = VariantSpec(name="p", width=500, height=500, format="png")
    with_icc = array(one("formats/cmyk_swop_icc.jpg", spec))
    without = array(one("formats/cmyk_no_icc.jpg", spec))
    assert with_icc.shape == without.shape == (333, 500, 3)
    assert np.abs(with_icc - without).mean() < 12  # inverted or naive CMYK would be far off


@pytest.mark.parametrize("path", ["formats/png_16bit_rgb.png", "formats/tiff_16bit_rgb_icc.tiff"])
def test_16_bit_sources_become_8_bit_with_the_right_levels(path: str) -> None:
    spec = VariantSpec(name="p", width=1000, height=1000, format="png")
    out = array(one(path, spec))
    pil = Image.open(CORPUS / path)
    if "icc_profile" in pil.info:
        ref = littlecms_reference_16(path)
    else:
        src = pyvips.Image.new_from_file(str(CORPUS / path))
        ref = np.ndarray(
            buffer=(src / 257).cast("uchar").write_to_memory(),
            dtype=np.uint8,
            shape=(src.height, src.width, src.bands),
        ).astype(np.int16)
    assert out.shape == ref.shape
    assert np.abs(out - ref).mean() < 3


def littlecms_reference_16(path: str) -> np.ndarray:
    src = pyvips.Image.new_from_file(str(CORPUS / path))
    eight = (src / 257).cast("uchar").copy(interpretation="srgb")
    arr = np.ndarray(
        buffer=eight.write_to_memory(), dtype=np.uint8, shape=(src.height, src.width, 3)
    )
    pil = Image.fromarray(arr)
    profile = ImageCms.ImageCmsProfile(io.BytesIO(src.get("icc-profile-data")))
    conv = ImageCms.profileToProfile(
        pil,
        profile,
        ImageCms.createProfile("sRGB"),
        outputMode="RGB",
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
    )
    return np.asarray(conv).astype(np.int16)


def test_alpha_kept_for_png_webp_avif_and_flattened_for_jpeg() -> None:
    path = "formats/png_rgba_alpha.png"
    for fmt in ("png", "webp", "avif"):
        out = array(one(path, VariantSpec(name="a", width=400, height=400, format=fmt)))
        assert out.shape[2] == 4, fmt
        assert out[..., 3].min() < 50, fmt
        assert out[..., 3].max() == 255, fmt
    transparent = (
        array(one(path, VariantSpec(name="a", width=400, height=400, format="png")))[..., 3] < 10
    )
    assert transparent.mean() > 0.05
    red = array(one(path, VariantSpec(name="a", width=400, height=400), background="#ff0000"))
    blue = array(one(path, VariantSpec(name="a", width=400, height=400), background="#0000ff"))
    assert red.shape[2] == blue.shape[2] == 3
    assert red[transparent][:, 0].mean() > 200
    assert red[transparent][:, 2].mean() < 50
    assert blue[transparent][:, 2].mean() > 200
    assert blue[transparent][:, 0].mean() < 50


@pytest.mark.parametrize("path", ["formats/gif_animated.gif", "formats/webp_animated.webp"])
def test_animated_sources_render_their_first_frame(path: str) -> None:
    src = pyvips.Image.new_from_file(str(CORPUS / path), n=-1)
    pages, page_h = src.get("n-pages"), src.get("page-height")
    assert pages > 1
    frames = [
        np.ndarray(
            buffer=src.crop(0, i * page_h, src.width, page_h).write_to_memory(),
            dtype=np.uint8,
            shape=(page_h, src.width, 4),
        ).astype(np.int16)
        for i in range(pages)
    ]
    out = array(one(path, VariantSpec(name="f", width=200, height=200, format="png")))
    assert out.shape == frames[0].shape
    visible = frames[0][..., 3] > 0
    d0 = np.abs(out - frames[0])[visible].mean()
    others = [np.abs(out - f)[visible].mean() for f in frames[1:]]
    assert d0 < 0.5
    assert max(others) > d0 + 1  # a later frame would not match


def test_watermark_changes_its_corner_only() -> None:
    mark = Watermark(text="© {artist}", opacity=0.8, position="south-east", size=0.3)
    spec = VariantSpec(name="d", width=800, height=800, format="png", watermark=mark)
    plain = VariantSpec(name="d", width=800, height=800, format="png")
    path = "large/sharp_bench_2569067123_aca715a2ee_o.jpg"
    marked = array(one(path, spec, artist="Jane Doe"))
    clean = array(one(path, plain, artist="Jane Doe"))
    h, w = clean.shape[:2]
    corner = np.abs(marked[h * 3 // 4 :, w * 2 // 3 :] - clean[h * 3 // 4 :, w * 2 // 3 :]).mean()
    rest = np.abs(marked[: h // 2, : w // 2] - clean[: h // 2, : w // 2]).mean()
    assert corner > 3
    assert rest == 0
    # no artist: nothing to stamp
    assert np.array_equal(array(one(path, spec)), clean)
