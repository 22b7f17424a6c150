"""HEIC (pillow-heif with libde265) and JPEG XL (pillow-jxl) through the probe and the renderer.

Real corpus files: the iPhone HEIC (Display P3 ICC, HEVC grid image, EXIF), a HEIC named
``.jpg``, the 8-bit JPEG XL. Rotated HEICs are made here with pillow-heif from the real
pixels of the corpus orientation JPEGs (EXIF Orientation turned into ``irot``/``imir`` by
libheif, the EXIF tag left in the file), the trap where applying EXIF again rotates twice.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
import pyvips
from PIL import Image, ImageOps

from darkroom_imaging import decoders
from darkroom_imaging.formats import Format
from darkroom_imaging.metadata import read_metadata
from darkroom_imaging.outcomes import Failure, Reason
from darkroom_imaging.probe import Probe, probe
from darkroom_imaging.profiles import load_profile
from darkroom_imaging.render import RenderResult, render

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
DEFAULT = load_profile("default")
#: One variant where all of them add only encoding time (the pipeline e2e renders them all).
MEDIUM = [s for s in DEFAULT.specs if s.name == "medium"]
HEIC = CORPUS / "formats/heic_iphone.heic"
JXL = CORPUS / "formats/jxl_8bit_srgb.jxl"


def _array(image: pyvips.Image) -> np.ndarray:
    return np.ndarray(
        buffer=image.write_to_memory(),
        dtype=np.uint8,
        shape=(image.height, image.width, image.bands),
    )


def _variant(result: RenderResult, name: str) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(result.rendered[name].data, "")


def _pillow_reference(path: Path, size: tuple[int, int], *, icc: bool) -> np.ndarray:
    """The file decoded by Pillow's own plugin, upright, optionally ICC → sRGB, resized."""
    pillow_heif.register_heif_opener()
    from pillow_jxl import JpegXLImagePlugin  # noqa: F401

    with Image.open(path) as im:
        upright = ImageOps.exif_transpose(im).convert("RGB")
        profile = im.info.get("icc_profile")
    ref = pyvips.Image.new_from_memory(upright.tobytes(), *upright.size, 3, "uchar")
    if icc and profile:
        ref = ref.copy()
        ref.set_type(pyvips.GValue.blob_type, "icc-profile-data", profile)
        ref = ref.icc_transform("srgb", embedded=True, intent="relative")
    ref = ref.resize(size[0] / ref.width, vscale=size[1] / ref.height, kernel="lanczos3")
    return _array(ref)[..., :3].astype(np.int16)


@pytest.fixture(scope="module")
def heic() -> RenderResult:
    return render(HEIC, DEFAULT.specs)


def test_heic_probes_accepted_with_its_display_size() -> None:
    result = probe(HEIC)
    assert isinstance(result, Probe), result
    assert result.format is Format.HEIC
    assert (result.display_width, result.display_height) == (4032, 3024)
    assert result.icc_description == "Display P3"


def test_heic_renders_every_default_variant_landscape(heic: RenderResult) -> None:
    assert heic.ok, heic.failures
    assert heic.decode is not None
    assert heic.decode.loader == "pillow-heif"
    assert heic.decode.loads == 1
    assert set(heic.rendered) == {s.name for s in DEFAULT.specs}
    large = heic.rendered["large"]
    assert (large.width, large.height) == (1440, 1080)  # 4032x3024 is landscape 4:3
    for spec in DEFAULT.specs:
        v = heic.rendered[spec.name]
        image = pyvips.Image.new_from_buffer(v.data, "")
        assert (image.width, image.height) == (v.width, v.height)
        assert v.width <= spec.width
        assert v.height <= spec.height


def test_heic_pixels_match_pillow_heif_converted_from_display_p3(heic: RenderResult) -> None:
    assert heic.decode is not None
    assert "Display P3->sRGB" in heic.decode.colour
    medium = _array(_variant(heic, "medium"))[..., :3].astype(np.int16)
    size = (medium.shape[1], medium.shape[0])
    converted = _pillow_reference(HEIC, size, icc=True)
    unconverted = _pillow_reference(HEIC, size, icc=False)
    near = float(np.abs(medium - converted).mean())
    far = float(np.abs(medium - unconverted).mean())
    assert near < 2.5, near
    # P3 → sRGB moves saturated colours: the unconverted decode is measurably further off.
    assert far > near + 0.5, (near, far)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_heic_irot_imir_applied_once_with_exif_orientation_left_in_file(
    tmp_path: Path, orientation: int
) -> None:
    jpeg = CORPUS / f"orientation/Landscape_{orientation}.jpg"
    with Image.open(jpeg) as im:
        # Stored 1200x1800 (or 1800x1200) reduced 4x: HEVC encoding at full size takes 25 s.
        stored = im.convert("RGB").reduce(4)
        exif = im.info["exif"]
        upright = ImageOps.exif_transpose(im).convert("RGB").reduce(4)
    heif = pillow_heif.from_bytes("RGB", stored.size, stored.tobytes())
    heif.info["exif"] = exif  # libheif writes irot/imir for it; the EXIF tag stays
    path = tmp_path / "rotated.heic"
    heif.save(path, quality=92)
    assert read_metadata(path).orientation == orientation  # the trap is really there
    result = probe(path)
    assert isinstance(result, Probe), result
    assert (result.display_width, result.display_height) == (450, 300)
    rendered = render(path, DEFAULT.specs)
    assert rendered.ok, rendered.failures
    assert rendered.decode is not None
    assert rendered.decode.oriented_width == 450
    large = _array(_variant(rendered, "large"))[..., :3].astype(np.int16)
    assert large.shape[:2] == (300, 450)  # never upscaled, landscape like the display
    ref = np.asarray(upright, dtype=np.int16)
    # HEVC q92 then JPEG (4:2:0) losses alone are about 3.3 on this picture.
    assert float(np.abs(large - ref).mean()) < 5.0
    # Applying the EXIF orientation on top would give a different picture entirely.
    turn = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_270}
    turn[8] = Image.Transpose.ROTATE_90
    twice = np.asarray(upright.transpose(turn[orientation]), dtype=np.int16)
    assert twice.shape != ref.shape or float(np.abs(large - twice).mean()) > 15


def test_heic_named_jpg_is_a_mismatch_and_renders_as_heic(tmp_path: Path) -> None:
    named_jpg = CORPUS / "bad/heic_with_jpg_extension.jpg"
    result = probe(named_jpg)
    assert isinstance(result, Failure)
    assert result.reason is Reason.EXTENSION_MISMATCH
    renamed = tmp_path / "photo.heic"
    shutil.copyfile(named_jpg, renamed)
    accepted = probe(renamed)
    assert isinstance(accepted, Probe), accepted
    assert (accepted.width, accepted.height) == (1440, 1440)
    rendered = render(renamed, MEDIUM)
    assert rendered.ok, rendered.failures
    assert (rendered.rendered["medium"].width, rendered.rendered["medium"].height) == (600, 600)


def test_heic_exif_still_reads() -> None:
    meta = read_metadata(HEIC)
    assert (meta.make, meta.model) == ("Apple", "iPhone 7")
    assert meta.date_time_original is not None
    assert meta.orientation == 1


def test_jxl_probes_accepted_and_renders_like_pillow_jxl() -> None:
    result = probe(JXL)
    assert isinstance(result, Probe), result
    assert result.format is Format.JXL
    assert (result.width, result.height, result.orientation) == (1440, 1080, 1)
    assert result.bit_depth == 8
    assert result.icc_description == "sRGB"
    rendered = render(JXL, MEDIUM)
    assert rendered.ok, rendered.failures
    assert rendered.decode is not None
    assert rendered.decode.loader == "pillow-jxl"
    medium = _array(_variant(rendered, "medium"))[..., :3].astype(np.int16)
    ref = _pillow_reference(JXL, (medium.shape[1], medium.shape[0]), icc=True)
    assert float(np.abs(medium - ref).mean()) < 2.0


def test_jxl_header_from_bare_codestream_and_container() -> None:
    code = JXL.read_bytes()
    assert decoders.jxl_header(code[:64]) == decoders.JxlHeader(1440, 1080, 1)
    box = b"\0\0\0\x0cJXL \r\n\x87\n" + b"\0\0\0\x14ftypjxl \0\0\0\0jxl "
    wrapped = box + (8 + len(code)).to_bytes(4, "big") + b"jxlc" + code
    assert decoders.jxl_header(wrapped) == decoders.JxlHeader(1440, 1080, 1)
    with pytest.raises(ValueError):
        decoders.jxl_header(code[:3])


@pytest.mark.parametrize("source", [HEIC, JXL], ids=["heic", "jxl"])
@pytest.mark.parametrize("keep", [0.5, 0.98, 30], ids=["half", "most", "30-bytes"])
def test_cut_copies_are_refused_never_crash(tmp_path: Path, source: Path, keep: float) -> None:
    data = source.read_bytes()
    cut = tmp_path / f"cut{source.suffix}"
    cut.write_bytes(data[: int(keep) if keep > 1 else int(len(data) * keep)])
    result = probe(cut)
    assert isinstance(result, Failure), result
    if source == HEIC:  # the box structure tells a cut HEIF at any length
        assert result.reason is Reason.TRUNCATED, result
    assert result.reason in (Reason.TRUNCATED, Reason.DECODE_ERROR), result
    rendered = render(cut, DEFAULT.specs)
    assert rendered.failure is not None, rendered.decode
    assert rendered.failure.reason in (Reason.TRUNCATED, Reason.DECODE_ERROR), rendered.failure
    assert set(rendered.failures) == {s.name for s in DEFAULT.specs}


@pytest.mark.parametrize(
    ("source", "present", "words"),
    [(HEIC, "heif_decoder_present", "HEVC decoder"), (JXL, "jxl_decoder_present", "JPEG XL")],
    ids=["heic", "jxl"],
)
def test_without_the_decoder_the_verdict_is_unsupported_at_ingest(
    monkeypatch: pytest.MonkeyPatch, source: Path, present: str, words: str
) -> None:
    monkeypatch.setattr(decoders, present, lambda: False)
    result = probe(source)
    assert isinstance(result, Failure), result
    assert result.reason is Reason.UNSUPPORTED_FORMAT
    assert words in result.message
    assert result.message.endswith(".")
    rendered = render(source, DEFAULT.specs[:1])
    assert rendered.failure is not None
    assert rendered.failure.reason is Reason.UNSUPPORTED_FORMAT


def test_decoders_present_in_this_installation() -> None:
    assert decoders.heif_decoder_present()
    assert decoders.jxl_decoder_present()
    assert "libde265" in pillow_heif.libheif_info()["decoders"]


def test_ten_bit_heic_decodes_to_sixteen_bits_and_renders(tmp_path: Path) -> None:
    with Image.open(CORPUS / "orientation/Landscape_1.jpg") as im:
        rgb = np.asarray(im.convert("RGB").resize((600, 400)), dtype=np.uint16)
    path = tmp_path / "ten.heic"
    pillow_heif.from_bytes("RGB;16", (600, 400), (rgb << 8).astype("<u2").tobytes()).save(
        path, quality=95
    )
    assert pillow_heif.open_heif(path, convert_hdr_to_8bit=False).info["bit_depth"] == 10
    opened = decoders.open_source(path, max_pixels=10**6)
    assert opened is not None
    image = opened.decode()
    assert (image.format, image.interpretation) == ("ushort", "rgb16")
    rendered = render(path, MEDIUM)
    assert rendered.ok, rendered.failures
    medium = _array(_variant(rendered, "medium"))[..., :3].astype(np.int16)
    assert medium.shape == (400, 600, 3)  # never upscaled
    # Against pillow-heif's own 8-bit decode of the same file (same HEVC losses).
    eight = pillow_heif.open_heif(path, convert_hdr_to_8bit=True)
    ref = np.asarray(eight.to_pillow().convert("RGB"), dtype=np.int16)
    # The variant's own JPEG (4:2:0) loss is about 3 on this picture; a wrong bit scaling
    # (10-bit values read as 16-bit, or the reverse) would be off by tens.
    assert float(np.abs(medium - ref).mean()) < 4.5


def test_too_many_pixels_is_checked_before_decoding() -> None:
    with pytest.raises(decoders.DecodeFailed) as caught:
        decoders.open_source(HEIC, max_pixels=4032 * 3024 - 1)
    assert caught.value.failure.reason is Reason.TOO_MANY_PIXELS
