"""HDR → SDR: detection (nclx, cICP, gain map), BT.2390 tone mapping, Ultra HDR base.

The reference for the tone mapping is built here independently of
:mod:`darkroom_imaging.hdr`: colour-science for the PQ EOTF, the P3-D65 → sRGB
matrix and the sRGB encoding, and the BT.2390 EETF typed in from the Report's
formulas; the content peak comes from pillow-heif's reading of the file's ``clli``.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvips

from darkroom_imaging import hdr
from darkroom_imaging.render import DecodeInfo, render
from darkroom_imaging.specs import VariantSpec

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # colour-science warns that scipy/matplotlib are absent
    import colour

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
HDR_AVIF = CORPUS / "formats" / "avif_10bit_hdr_p3_nclx.avif"
SDR_AVIF = CORPUS / "formats" / "avif_8bit_srgb.avif"
ULTRAHDR = CORPUS / "formats" / "icc_displayp3_ultrahdr_pixel6pro.jpg"
LARGE = VariantSpec(name="large", width=1920, height=1080, fit="inside", format="png")


def to_array(data: bytes | pyvips.Image) -> np.ndarray:
    image = data if isinstance(data, pyvips.Image) else pyvips.Image.new_from_buffer(data, "")
    return np.asarray(image.numpy(), dtype=np.float64)


def luminance(rgb8: np.ndarray) -> np.ndarray:
    return rgb8[..., :3] @ np.array([0.2126, 0.7152, 0.0722])


def reduced_decode(path: Path, width: int, height: int) -> pyvips.Image:
    """The same reduction the renderer does: Lanczos 3 to exactly ``width`` × ``height``."""
    image = pyvips.Image.new_from_file(str(path))
    image = image.resize(width / image.width, vscale=height / image.height, kernel="lanczos3")
    return image.crop(0, 0, min(width, image.width), min(height, image.height))


# --- reference, independent of darkroom_imaging.hdr ---------------------------------------


def bt2390_reference(nits: np.ndarray, lw: float, lmax: float) -> np.ndarray:
    """Report ITU-R BT.2390 EETF, black 0: E1 in PQ normalised by the source peak."""
    pq = colour.models.eotf_inverse_ST2084
    e1 = pq(nits) / pq(lw)
    max_lum = pq(lmax) / pq(lw)
    ks = 1.5 * max_lum - 0.5
    t = (e1 - ks) / (1 - ks)
    p = (
        (2 * t**3 - 3 * t**2 + 1) * ks
        + (t**3 - 2 * t**2 + t) * (1 - ks)
        + (-2 * t**3 + 3 * t**2) * max_lum
    )
    e2 = np.where(e1 < ks, e1, p)
    return np.asarray(colour.models.eotf_ST2084(np.minimum(e2, 1.0) * pq(lw)))


def reference_sdr(codes: np.ndarray, lw: float) -> np.ndarray:
    """PQ P3-D65 codes [0, 1] → 8-bit sRGB, luminance-ratio BT.2390 to 203 cd/m²."""
    p3 = colour.RGB_COLOURSPACES["P3-D65"]
    srgb = colour.RGB_COLOURSPACES["sRGB"]
    light = np.asarray(colour.models.eotf_ST2084(codes))
    y = np.maximum(light @ p3.matrix_RGB_to_XYZ[1], 0)
    y_out = bt2390_reference(y, lw, 203.0)
    scale = np.where(y > 1e-6, y_out / np.maximum(y, 1e-6), 1 / 203.0)
    linear = light * scale[..., None] / 203.0
    linear = colour.RGB_to_RGB(linear, p3, srgb, chromatic_adaptation_transform=None)
    encoded = colour.models.eotf_inverse_sRGB(np.clip(linear, 0, 1))
    return np.rint(np.asarray(encoded) * 255)


@pytest.fixture(scope="module")
def hdr_render() -> tuple[np.ndarray, DecodeInfo, pyvips.Image]:
    result = render(HDR_AVIF, [LARGE])
    assert result.ok, result.failures
    assert result.decode is not None
    out = to_array(result.rendered["large"].data)
    reduced = reduced_decode(HDR_AVIF, out.shape[1], out.shape[0]).copy_memory()
    return out, result.decode, reduced


def test_hdr_avif_is_tone_mapped_with_bright_highlights(
    hdr_render: tuple[np.ndarray, DecodeInfo, pyvips.Image],
) -> None:
    out, decode, reduced = hdr_render
    assert decode.colour == "pq:p3->bt2390(712->203cd/m2)->sRGB"
    assert out.shape == (1080, 711, 3)
    # What Darkroom did before: PQ code values taken as sRGB (16 → 8 bits).
    before = np.rint(to_array(reduced) / 257)
    after_peak = np.percentile(out.max(axis=-1), 99.5)
    before_peak = np.percentile(before.max(axis=-1), 99.5)
    assert after_peak >= 240, after_peak
    assert before_peak < 200, before_peak  # the flat, grey rendition this replaces
    assert luminance(out).std() > 1.25 * luminance(before).std()  # more contrast, not flat
    assert luminance(out).std() > 45


def test_hdr_avif_matches_an_independent_colour_science_reference(
    hdr_render: tuple[np.ndarray, DecodeInfo, pyvips.Image],
) -> None:
    import pillow_heif

    out, _, reduced = hdr_render
    heif = pillow_heif.open_heif(str(HDR_AVIF), convert_hdr_to_8bit=False)
    lw = float(heif.info["content_light_level"]["max_content_light_level"])
    assert lw == 712
    bits = int(reduced.get("bits-per-sample"))
    codes = to_array(reduced) / (((1 << bits) - 1) << (16 - bits))
    ref = reference_sdr(codes, lw)
    diff = np.abs(out - ref)
    # The renderer clips out-of-gamut colours towards their luminance, the reference
    # clips each channel; elsewhere they agree to rounding.
    assert diff.mean() <= 0.5, diff.mean()  # measured 0.11 (1.2 % of pixels differ by > 2)
    to_lab = colour.XYZ_to_Lab
    lab_out = to_lab(colour.sRGB_to_XYZ(out / 255))
    lab_ref = to_lab(colour.sRGB_to_XYZ(ref / 255))
    delta = colour.delta_E(lab_out, lab_ref, method="CIE 2000")
    assert delta.mean() <= 0.3, delta.mean()  # measured 0.07


def test_ultrahdr_jpeg_renders_its_sdr_base_with_shrink_on_load() -> None:
    small = VariantSpec(name="small", width=400, height=400, fit="inside", format="png")
    result = render(ULTRAHDR, [small])
    assert result.ok, result.failures
    assert result.decode is not None
    assert result.decode.loader.startswith("uhdrload")
    assert result.decode.shrink == 8
    assert result.decode.colour.startswith("gainmap:sdr-base; icc:Display P3->sRGB")
    out = to_array(result.rendered["small"].data)
    # jpegload reads the same primary JPEG (it does not know about the gain map).
    base = pyvips.Image.jpegload(str(ULTRAHDR), shrink=8)
    assert base.get("vips-loader") == "jpegload"
    base = base.resize(out.shape[1] / base.width, vscale=out.shape[0] / base.height)
    base = base.icc_transform("srgb", embedded=True, intent="relative", depth=8)
    ref = to_array(base.crop(0, 0, out.shape[1], out.shape[0]))
    assert np.abs(out - ref[..., :3]).mean() <= 1.0


# --- detection ---------------------------------------------------------------------------


def test_detection_on_the_corpus() -> None:
    signal = hdr.detect(HDR_AVIF)
    assert signal is not None
    assert (signal.transfer, signal.primaries, signal.origin) == ("pq", "p3", "nclx")
    assert signal.cicp == (12, 16, 6, True)
    assert signal.peak_nits == 712
    assert signal.needs_tone_mapping
    sdr = hdr.detect(SDR_AVIF)
    assert sdr is not None
    assert sdr.transfer == "sdr"
    assert not sdr.needs_tone_mapping
    assert hdr.detect(SDR_AVIF.read_bytes()) == sdr
    header = pyvips.Image.new_from_file(str(ULTRAHDR))
    for found in (hdr.detect(ULTRAHDR, header), hdr.detect(ULTRAHDR)):
        assert found is not None
        assert found.transfer == "gainmap"
        assert not found.needs_tone_mapping
    assert hdr.detect(CORPUS / "formats" / "png_16bit_rgb.png") is None
    assert hdr.detect(CORPUS / "formats" / "progressive_960x1280.jpg") is None
    assert hdr.detect(b"\x00\x00\x00\x18ftypavif garbage") is None


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def hlg_heif(primary: int = 1) -> bytes:
    """An ISO-BMFF file whose ``meta`` gives item 1 an HLG BT.2020 ``nclx``, item 2 sRGB."""
    hlg = box(b"colr", b"nclx" + struct.pack(">HHHB", 9, 18, 9, 0x80))
    srgb = box(b"colr", b"nclx" + struct.pack(">HHHB", 1, 13, 6, 0x80))
    clli = box(b"clli", struct.pack(">HH", 4000, 400))
    ipco = box(b"ipco", srgb + hlg + clli)
    # ipma v0: item 1 → properties 2, 3; item 2 → property 1.
    ipma = box(
        b"ipma",
        b"\x00\x00\x00\x00"
        + struct.pack(">I", 2)
        + struct.pack(">HB", 1, 2)
        + b"\x82\x03"
        + struct.pack(">HB", 2, 1)
        + b"\x81",
    )
    pitm = box(b"pitm", b"\x00\x00\x00\x00" + struct.pack(">H", primary))
    meta = box(b"meta", b"\x00\x00\x00\x00" + pitm + box(b"iprp", ipco + ipma))
    return box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic") + meta


def test_detection_of_a_hand_built_hlg_nclx() -> None:
    signal = hdr.detect(hlg_heif())
    assert signal is not None
    assert (signal.transfer, signal.primaries, signal.cicp) == ("hlg", "bt2020", (9, 18, 9, True))
    assert signal.peak_nits == 4000
    # The primary item decides: make item 2 (sRGB nclx) primary.
    other = hdr.detect(hlg_heif(primary=2))
    assert other is not None
    assert other.transfer == "sdr"
    assert other.primaries == "bt709"


# --- HLG, end to end ----------------------------------------------------------------------


def hlg_oetf_reference(scene: np.ndarray) -> np.ndarray:
    """BT.2100 Table 5 HLG OETF, typed in from the Recommendation."""
    a, b = 0.17883277, 1 - 4 * 0.17883277
    c = 0.5 - a * np.log(4 * a)
    return np.where(
        scene <= 1 / 12, np.sqrt(3 * scene), a * np.log(np.maximum(12 * scene - b, 1e-12)) + c
    )


def png_with_chunk(png: bytes, kind: bytes, body: bytes) -> bytes:
    chunk = struct.pack(">I4s", len(body), kind) + body
    chunk += struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    end_of_ihdr = 8 + 8 + 13 + 4
    return png[:end_of_ihdr] + chunk + png[end_of_ihdr:]


def test_hlg_png_from_a_real_photo_renders_sanely(tmp_path: Path) -> None:
    photo = pyvips.Image.new_from_file(str(CORPUS / "formats" / "progressive_960x1280.jpg"))
    srgb = to_array(photo)[..., :3] / 255
    linear = colour.models.eotf_sRGB(srgb)
    bt2020 = colour.RGB_to_RGB(
        linear,
        colour.RGB_COLOURSPACES["sRGB"],
        colour.RGB_COLOURSPACES["ITU-R BT.2020"],
        chromatic_adaptation_transform=None,
    )
    # BT.2408: HLG reference white at 75 % signal, i.e. scene light 0.265.
    signal = hlg_oetf_reference(np.clip(bt2020 * 0.265, 0, 1))
    sixteen = np.rint(signal * 65535).astype(np.uint16)
    image = pyvips.Image.new_from_array(sixteen, interpretation="rgb16")
    png = png_with_chunk(bytes(image.pngsave_buffer()), b"cICP", bytes([9, 18, 0, 1]))
    path = tmp_path / "hlg.png"
    path.write_bytes(png)
    found = hdr.detect(path)
    assert found is not None
    assert (found.transfer, found.primaries) == ("hlg", "bt2020")

    spec = VariantSpec(name="p", width=480, height=640, fit="inside", format="png")
    result = render(path, [spec])
    assert result.ok, result.failures
    assert result.decode is not None
    assert result.decode.colour == "hlg:bt2020->bt2390(1000->203cd/m2)->sRGB"
    out = to_array(result.rendered["p"].data)
    original = to_array(photo.resize(out.shape[1] / photo.width))[: out.shape[0], : out.shape[1]]
    lum_out, lum_in = luminance(out).ravel(), luminance(original).ravel()
    assert np.corrcoef(lum_out, lum_in)[0, 1] > 0.98
    assert np.abs(out - original[..., :3]).mean() < 20
    assert np.percentile(out.max(axis=-1), 99.5) >= 200


def test_to_sdr_refuses_what_it_cannot_map() -> None:
    grey = pyvips.Image.black(4, 4).cast("ushort")
    with pytest.raises(ValueError, match="3 colour bands"):
        hdr.to_sdr(grey, hdr.signal_from_cicp(9, 16))
    rgb = grey.bandjoin([grey, grey])
    with pytest.raises(ValueError, match="needs no tone mapping"):
        hdr.to_sdr(rgb, hdr.signal_from_cicp(1, 13))


def test_eetf_keeps_low_light_and_compresses_the_peak() -> None:
    nits = np.array([0.0, 10.0, 50.0, 712.0, 5000.0])
    out: Any = hdr.bt2390_eetf(nits, 712.0, 203.0)
    assert out[0] == 0
    assert abs(out[1] - 10.0) < 1e-6
    assert abs(out[2] - 50.0) < 1e-6
    assert abs(out[3] - 203.0) < 1e-6
    assert abs(out[4] - 203.0) < 1e-6
    assert np.allclose(out, bt2390_reference(np.minimum(nits, 712.0), 712.0, 203.0))
