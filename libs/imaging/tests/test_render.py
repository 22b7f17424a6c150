"""The decode-once renderer on real corpus images."""

from __future__ import annotations

import asyncio
import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import pyvips
from PIL import Image, JpegImagePlugin

from darkroom_imaging.outcomes import Reason
from darkroom_imaging.profiles import load_profile
from darkroom_imaging.render import (
    DecodeInfo,
    RenderContext,
    RenderedVariant,
    VariantFailure,
    _render_variant,
    render,
    render_async,
)
from darkroom_imaging.specs import VariantSpec, spec_hash

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
DEFAULT = load_profile("default")
BENCH = load_profile("bench")


def decoded(v: RenderedVariant) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(v.data, "")


@pytest.fixture(scope="module")
def canon() -> object:
    return render(
        CORPUS / "large/canon_5d3_22mp.jpg", DEFAULT.specs, context=RenderContext(artist="Jane Doe")
    )


def test_every_default_variant_decodes_with_the_right_size(canon) -> None:
    assert canon.ok, canon.failures
    sizes = {}
    for spec in DEFAULT.specs:
        v = canon.rendered[spec.name]
        img = decoded(v)
        assert (img.width, img.height) == (v.width, v.height)
        assert img.get("vips-loader").startswith(
            {"jpeg": "jpeg", "webp": "webp", "avif": "heif"}[spec.format]
        )
        sizes[spec.name] = (v.width, v.height)
        assert v.bytes == len(v.data) > 0
        assert v.mime == spec.mime
    # 5760x3840 source: cover is exact, inside keeps 3:2 within the bounds
    assert sizes["thumb"] == (300, 300)
    assert sizes["icon"] == (128, 128)
    assert sizes["medium"] == (800, 533)
    assert (
        sizes["large"]
        == sizes["large_webp"]
        == sizes["large_avif"]
        == sizes["display"]
        == (1620, 1080)
    )


def test_one_decode_with_shrink_on_load_feeds_every_variant(canon) -> None:
    d = canon.decode
    assert d.loads == 1
    assert d.loader == "jpegload"
    # 1620x1080 needed from 5760x3840: shrink-on-load by 2 (not 4, which gives 1440x960)
    assert (d.shrink, d.load_width, d.load_height) == (2, 2880, 1920)
    assert (d.intermediate_width, d.intermediate_height) == (1620, 1080)
    decodes = {repr(v.provenance["decode"]) for v in canon.rendered.values()}
    assert len(decodes) == 1


def test_provenance(canon) -> None:
    v = canon.rendered["thumb"]
    p = v.provenance
    assert p["engine"] == "darkroom_imaging"
    assert p["libvips"].startswith("8.")
    assert p["spec_hash"] == spec_hash(DEFAULT.spec("thumb"))
    assert p["source_sha256"] == "24d39886684681219b7a35978e27b89a4740e131caa12b948b5fd9114349c970"
    assert p["decode"]["shrink"] == 2
    assert v.dominant_colour.startswith("#")
    assert len(v.dominant_colour) == 7


def test_precomputed_sha_is_used_and_bytes_input_works() -> None:
    data = (CORPUS / "jpeg/exif_nikon_d70.jpg").read_bytes()
    result = render(data, BENCH.specs[:1], context=RenderContext(source_sha256="ab" * 32))
    assert result.ok
    assert result.decode is not None
    assert result.decode.loader == "jpegload_buffer"
    assert result.rendered["thumb"].provenance["source_sha256"] == "ab" * 32


def test_never_upscales_and_cover_crops_to_box_aspect_when_too_small() -> None:
    # 500x333 source
    specs = [
        VariantSpec(name="inside", width=1920, height=1080),
        VariantSpec(name="cover", width=1000, height=1000, fit="cover"),
        VariantSpec(name="wide", width=1600, height=400, fit="cover"),
        VariantSpec(name="fill", width=1000, height=100, fit="fill"),
    ]
    r = render(CORPUS / "formats/cmyk_swop_icc.jpg", specs)
    sizes = {n: (v.width, v.height) for n, v in r.rendered.items()}
    assert sizes == {
        "inside": (500, 333),
        "cover": (333, 333),
        "wide": (500, 125),
        "fill": (500, 100),
    }
    assert r.decode is not None
    assert r.decode.shrink == 1


@pytest.mark.parametrize(
    "name",
    [
        "jpeg/exif_gps_tahoe.jpg",
        "jpeg/exif_lens_gps_iphone6.jpg",
        "formats/icc_adobergb_canon_eos7d.jpg",
    ],
)
def test_outputs_hold_no_exif_gps_xmp_only_srgb_icc(name: str) -> None:
    specs = [
        VariantSpec(name=f, width=200, height=200, format=f)
        for f in ("jpeg", "webp", "avif", "png")
    ]
    r = render(CORPUS / name, specs)
    assert r.ok
    for v in r.rendered.values():
        img = decoded(v)
        fields = img.get_fields()
        assert not [f for f in fields if f.startswith(("exif", "xmp", "iptc"))], fields
        assert "icc-profile-data" in fields
        pil = Image.open(io.BytesIO(v.data))
        assert len(pil.getexif()) == 0
        assert "sRGB" in _icc_desc(pil.info["icc_profile"])


def _icc_desc(profile: bytes) -> str:
    from PIL import ImageCms

    return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile)))


def test_jpeg_is_baseline_420_with_optimised_huffman() -> None:
    spec = VariantSpec(name="j", width=800, height=600, quality=82)
    v = render(CORPUS / "large/craft_beer_24mp_progressive.jpg", [spec]).rendered["j"]
    pil = Image.open(io.BytesIO(v.data))
    assert "progressive" not in pil.info
    assert "progression" not in pil.info
    assert JpegImagePlugin.get_sampling(pil) == 2  # 4:2:0
    plain = decoded(v).jpegsave_buffer(Q=82, optimize_coding=False, subsample_mode="on", keep="icc")
    assert v.bytes < len(plain)  # optimised Huffman tables are smaller than the standard ones


def test_keep_copyright_writes_only_artist_and_copyright() -> None:
    spec = VariantSpec(name="c", width=200, height=200, keep_copyright=True)
    ctx = RenderContext(artist="Jane Doe", copyright="Copyright 2024 Jane Doe")
    v = render(CORPUS / "jpeg/exif_gps_tahoe.jpg", [spec], context=ctx).rendered["c"]
    exif = Image.open(io.BytesIO(v.data)).getexif()
    assert exif[315] == "Jane Doe"
    assert exif[33432] == "Copyright 2024 Jane Doe"
    assert 0x8825 not in exif  # no GPS IFD
    assert 271 not in exif  # no Make
    assert 272 not in exif  # no Model


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("bad/zero_bytes.jpg", Reason.EMPTY_FILE),
        ("bad/truncated.jpg", Reason.TRUNCATED),
        ("bad/html_renamed.jpg", Reason.UNSUPPORTED_FORMAT),
        ("bad/svg_renamed.jpg", Reason.UNSUPPORTED_FORMAT),
        ("bad/corrupt_png_broken_data_stream.png", Reason.DECODE_ERROR),
        ("bad/bomb_17000x17000.avif", Reason.TOO_MANY_PIXELS),
        ("bad/bomb_32000x32000.dng", Reason.TOO_MANY_PIXELS),
        ("large/giant_20000x14000_gray.jpg", Reason.TOO_MANY_PIXELS),
        ("does/not/exist.jpg", Reason.DECODE_ERROR),
    ],
)
def test_bad_sources_fail_every_variant_with_a_reason(path: str, reason: Reason) -> None:
    r = render(CORPUS / path, BENCH.specs)
    assert not r.ok
    assert r.decode is None
    assert r.failure is not None
    assert r.failure.reason == reason, r.failure
    assert set(r.failures) == {s.name for s in BENCH.specs}
    assert all(f.reason == reason for f in r.failures.values())


def test_empty_bytes_and_max_pixels_from_context() -> None:
    empty = render(b"", BENCH.specs).failure
    assert empty is not None
    assert empty.reason == Reason.EMPTY_FILE
    r = render(
        CORPUS / "formats/cmyk_no_icc.jpg", BENCH.specs, context=RenderContext(max_pixels=500 * 332)
    )
    assert r.failure is not None
    assert r.failure.reason == Reason.TOO_MANY_PIXELS
    assert render(
        CORPUS / "formats/cmyk_no_icc.jpg", BENCH.specs, context=RenderContext(max_pixels=500 * 333)
    ).ok


def test_duplicate_spec_names_raise() -> None:
    spec = VariantSpec(name="a", width=10, height=10)
    with pytest.raises(ValueError, match="duplicate"):
        render(CORPUS / "formats/cmyk_no_icc.jpg", [spec, spec])


def _decode_info(w: int, h: int) -> DecodeInfo:
    return DecodeInfo("test", w, h, 1, w, h, 1, w, h, w, h, 1, "none", 0.0)


def test_encoder_failure_is_encode_failed() -> None:
    # WebP cannot hold more than 16383 px on a side.
    base = pyvips.Image.black(16384, 4, bands=3).copy(interpretation="srgb").cast("uchar")
    spec = VariantSpec(name="w", width=16384, height=4, format="webp")
    out = _render_variant(base, _decode_info(16384, 4), spec, RenderContext(), {})
    assert isinstance(out, VariantFailure)
    assert out.failure.reason == Reason.ENCODE_FAILED


def test_pixel_failure_after_decode_is_render_failed() -> None:
    # A lazily-decoded truncated JPEG: the header is fine, the pixels fail on use.
    data = (CORPUS / "bad/truncated.jpg").read_bytes()
    base = pyvips.Image.new_from_buffer(data, "", fail_on="truncated")
    spec = VariantSpec(name="r", width=64, height=64)
    out = _render_variant(base, _decode_info(base.width, base.height), spec, RenderContext(), {})
    assert isinstance(out, VariantFailure)
    assert out.failure.reason == Reason.RENDER_FAILED


def test_parallel_threads_give_identical_results() -> None:
    path = CORPUS / "jpeg/exif_canon_40d_makernote.jpg"
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: render(path, BENCH.specs), range(4)))
    first = {n: v.data for n, v in results[0].rendered.items()}
    for r in results[1:]:
        assert {n: v.data for n, v in r.rendered.items()} == first


async def test_render_async_runs_off_the_loop() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    result = await render_async(
        CORPUS / "large/sharp_bench_2569067123_aca715a2ee_o.jpg", DEFAULT.specs
    )
    task.cancel()
    assert result.ok
    assert ticks > 5  # the loop kept running while the render worked


def test_huge_image_renders_with_raised_limit_using_shrink_on_load() -> None:
    spec = VariantSpec(name="t", width=400, height=400)
    r = render(
        CORPUS / "large/giant_20000x14000_gray.jpg",
        [spec],
        context=RenderContext(max_pixels=300_000_000),
    )
    assert r.ok
    assert r.decode is not None
    assert r.decode.shrink == 8
    v = r.rendered["t"]
    assert (v.width, v.height) == (400, 280)
    assert decoded(v).bands == 3
    arr = np.ndarray(buffer=decoded(v).write_to_memory(), dtype=np.uint8, shape=(280, 400, 3))
    assert (arr[..., 0] == arr[..., 1]).mean() > 0.95  # grey stays grey in sRGB
