"""The variant renderer: every variant of one source from one decode.

Pipeline for one source (:func:`render`):

1. **Header** (no pixels): size, orientation (EXIF 274; 0 or invalid → 1), loader.
   More than ``context.max_pixels`` pixels → ``too_many_pixels`` before any decode.
2. **Decode once.** The scale the largest variant needs is computed over all specs
   (``inside`` vs ``cover``, recipe crops, orientation swapping width and height).
   JPEG is decoded with libvips shrink-on-load at the largest factor in {1,2,4,8}
   that still yields at least that many pixels (like sharp's ``fastShrinkOnLoad``),
   sequentially; the result is reduced (Lanczos 3, alpha premultiplied) to exactly
   that scale, converted to 8-bit sRGB (embedded ICC → sRGB; CMYK without ICC via
   a SWOP press profile, :mod:`.cmyk`; PQ/HLG HDR tone-mapped, :mod:`.hdr`; 16-bit,
   grey and Lab via ``colourspace``),
   copied to memory **once** and auto-rotated. Animated GIF/WebP give their first
   frame. HEIC (HEVC) and JPEG XL are decoded by pillow-heif / pillow-jxl
   (:mod:`.decoders`): full size (neither has shrink-on-load), already upright
   (HEIF ``irot``/``imir``, JPEG XL's codestream orientation), then the same steps.
3. **Per variant**, from that in-memory intermediate: recipe geometry ops, fit
   (resize to exact bounds; ``cover`` crops at the gravity), recipe pixel ops,
   watermark, alpha flattened onto ``context.background`` for JPEG, placeholders,
   encode. Output keeps no metadata but an sRGB ICC profile (libvips' compact
   built-in one), plus EXIF Artist/Copyright only when ``spec.keep_copyright``.

Expected failures are values (:class:`VariantFailure` with a
:class:`~darkroom_imaging.outcomes.Reason`), never exceptions. The function keeps
no shared state and is safe to call from several threads
(:mod:`darkroom_imaging.vipsconfig`).
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import hashlib
import json
import math
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pyvips

from darkroom_imaging import decoders, vipsconfig
from darkroom_imaging import ops as recipe_ops
from darkroom_imaging.cmyk import untagged_profile
from darkroom_imaging.hdr import HdrSignal, detect, to_sdr
from darkroom_imaging.outcomes import Failure, Reason
from darkroom_imaging.placeholder import placeholders
from darkroom_imaging.specs import FocalPoint, VariantSpec, spec_hash
from darkroom_imaging.watermark import format_template, hex_to_rgb, stamp_text

ENGINE = "darkroom_imaging"
DEFAULT_MAX_PIXELS = 100_000_000

# uhdrload (Ultra HDR JPEG) decodes the SDR base JPEG and takes the same shrink.
_JPEG_LOADERS = (
    "jpegload",
    "jpegload_buffer",
    "jpegload_source",
    "uhdrload",
    "uhdrload_buffer",
    "uhdrload_source",
)
# Raster formats a gallery accepts; SVG/PDF/ImageMagick/matrix loaders are refused.
_ALLOWED_LOADERS = (
    "jpegload",
    "uhdrload",
    "pngload",
    "webpload",
    "gifload",
    "tiffload",
    "heifload",
    "jxlload",
    decoders.HEIF_LOADER,
    decoders.JXL_LOADER,
)
_KEEP_FIELDS = frozenset(
    {
        "width",
        "height",
        "bands",
        "format",
        "coding",
        "interpretation",
        "xoffset",
        "yoffset",
        "xres",
        "yres",
        "filename",
    }
)


@dataclass(frozen=True, slots=True)
class RenderContext:
    """Per-source inputs besides the pixels.

    ``artist``/``copyright`` fill watermark templates (``{artist}``) and the EXIF
    Artist (315) / Copyright (33432) tags written when ``spec.keep_copyright``.
    ``background`` (``#rrggbb``) is what alpha is flattened onto for JPEG.
    ``max_pixels`` bounds width × height of one frame, checked from the header.
    ``fail_on`` is libvips' decode strictness (``none``, ``truncated``, ``error``,
    ``warning``). ``source_sha256`` avoids re-hashing when the caller already has it.
    """

    artist: str = ""
    copyright: str = ""
    background: str = "#ffffff"
    max_pixels: int = DEFAULT_MAX_PIXELS
    fail_on: str = "error"
    source_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class DecodeInfo:
    """How the source was decoded (the one decode all variants share).

    ``source_*`` are stored dimensions, ``oriented_*`` after EXIF orientation;
    ``shrink`` is the JPEG shrink-on-load factor (1 = full decode); ``load_*`` the
    decoded size; ``intermediate_*`` the oriented, reduced in-memory image every
    variant is derived from; ``loads`` counts pixel decodes (1 on success);
    ``colour`` names the colour conversion applied; ``seconds`` is wall time.
    """

    loader: str
    source_width: int
    source_height: int
    orientation: int
    oriented_width: int
    oriented_height: int
    shrink: int
    load_width: int
    load_height: int
    intermediate_width: int
    intermediate_height: int
    loads: int
    colour: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class RenderedVariant:
    """One encoded variant.

    ``data`` is the encoded file; ``width``/``height`` in px; ``seconds`` is the wall
    time of this variant's resize, ops and encode (the shared decode is in
    :class:`DecodeInfo`); ``thumbhash`` base64; ``dominant_colour`` ``#rrggbb``;
    ``provenance`` says which engine, libvips, spec hash, source and decode made it.
    """

    name: str
    data: builtins.bytes = field(repr=False)
    format: str
    mime: str
    width: int
    height: int
    seconds: float
    thumbhash: str
    dominant_colour: str
    provenance: dict[str, Any]

    @property
    def bytes(self) -> int:
        """Size of ``data`` in bytes."""
        return len(self.data)


@dataclass(frozen=True, slots=True)
class VariantFailure:
    """A variant that could not be produced, with the reason."""

    name: str
    failure: Failure


VariantOutcome = RenderedVariant | VariantFailure


@dataclass(frozen=True, slots=True)
class RenderResult:
    """Outcome of :func:`render`: one entry per spec, in spec order.

    ``decode`` is ``None`` when the source could not be decoded; ``failure`` is then
    the source-level failure (every variant carries it too).
    """

    outcomes: tuple[VariantOutcome, ...]
    decode: DecodeInfo | None
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        """True when every variant was rendered."""
        return all(isinstance(o, RenderedVariant) for o in self.outcomes)

    @property
    def rendered(self) -> dict[str, RenderedVariant]:
        """Rendered variants by name."""
        return {o.name: o for o in self.outcomes if isinstance(o, RenderedVariant)}

    @property
    def failures(self) -> dict[str, Failure]:
        """Failures by variant name."""
        return {o.name: o.failure for o in self.outcomes if isinstance(o, VariantFailure)}


class _SourceError(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def render(
    source: Path | builtins.bytes,
    specs: Sequence[VariantSpec],
    *,
    context: RenderContext | None = None,
) -> RenderResult:
    """Render every spec of ``specs`` from ``source`` (a file path or encoded bytes).

    Returns a :class:`RenderResult`; never raises for a bad image or a failing
    variant (reason codes ``decode_error``, ``unsupported_format``,
    ``too_many_pixels``, ``render_failed``, ``encode_failed``, ``invalid_spec``).
    Raises ``ValueError`` only for duplicate spec names (a programming error).
    """
    vipsconfig.configure()
    context = context or RenderContext()
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate spec names in {names}")
    try:
        base, decode = _decode(source, specs, context)
    except _SourceError as exc:
        return RenderResult(
            outcomes=tuple(VariantFailure(s.name, exc.failure) for s in specs),
            decode=None,
            failure=exc.failure,
        )
    sha = context.source_sha256 or _sha256(source)
    common = {
        "engine": ENGINE,
        "engine_version": _engine_version(),
        "libvips": vipsconfig.libvips_version(),
        "source_sha256": sha,
        "decode": {
            "loader": decode.loader,
            "shrink": decode.shrink,
            "load_size": [decode.load_width, decode.load_height],
            "intermediate_size": [decode.intermediate_width, decode.intermediate_height],
            "orientation": decode.orientation,
            "colour": decode.colour,
        },
    }
    # Specs that differ only in encoding (large / large_webp / large_avif) share pixels.
    prepared: dict[str, tuple[pyvips.Image, str, str]] = {}
    # Plain ``inside`` variants share one set of placeholders (see _placeholders).
    inside: dict[bool, tuple[str, str]] = {}
    outcomes = tuple(
        _render_variant(base, decode, spec, context, common, prepared, inside) for spec in specs
    )
    return RenderResult(outcomes=outcomes, decode=decode)


async def render_async(
    source: Path | builtins.bytes,
    specs: Sequence[VariantSpec],
    *,
    context: RenderContext | None = None,
    executor: Executor | None = None,
) -> RenderResult:
    """:func:`render` on ``executor`` (default: the loop's thread pool), off the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        executor, functools.partial(render, source, specs, context=context)
    )


# --- decode -------------------------------------------------------------------


def _open(source: Path | builtins.bytes, **options: Any) -> pyvips.Image:
    if isinstance(source, builtins.bytes | bytearray | memoryview):
        return pyvips.Image.new_from_buffer(source, "", **options)
    return pyvips.Image.new_from_file(str(source), **options)


def _open_routed(
    source: Path | builtins.bytes, context: RenderContext
) -> decoders.OpenedSource | None:
    """The HEIC/JPEG XL ``source`` opened by :mod:`.decoders`, or None for libvips' formats."""
    try:
        return decoders.open_source(source, max_pixels=context.max_pixels)
    except decoders.DecodeFailed as exc:
        raise _SourceError(exc.failure) from None
    except OSError:
        return None  # libvips reports the unreadable path


def _classify(error: Exception) -> Failure:
    """A decoder's error as a Failure: a sentence for a person, libvips' text as detail."""
    detail = _detail(error)
    lowered = detail.lower()
    if "not a known" in lowered or "no known loader" in lowered:
        return Failure(
            Reason.UNSUPPORTED_FORMAT, "The file is not in an image format we can read.", detail
        )
    if "premature end" in lowered or "truncated" in lowered or "unexpected end" in lowered:
        return Failure(
            Reason.TRUNCATED, "The image file is cut short, so it cannot be decoded.", detail
        )
    return Failure(Reason.DECODE_ERROR, "The image data are damaged and cannot be decoded.", detail)


def _detail(error: Exception) -> str:
    """The library's message on one line (distinct lines joined by ``; ``), for the log."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(dict.fromkeys(lines))[:500] or type(error).__name__


def _orientation(image: pyvips.Image) -> int:
    if image.get_typeof("orientation") == 0:
        return 1
    value = int(image.get("orientation"))
    return value if 1 <= value <= 8 else 1


def _needed_scale(spec: VariantSpec, width: float, height: float) -> float:
    """Scale of the oriented source that ``spec`` needs (≤ 1: never upscale)."""
    geometry, _ = recipe_ops.split_recipe(spec.recipe)
    gw, gh = recipe_ops.geometry_size(width, height, geometry)
    if spec.fit == "inside":
        scale = min(spec.width / gw, spec.height / gh)
    else:
        scale = max(spec.width / gw, spec.height / gh)
    return min(1.0, scale)


def _decode(
    source: Path | builtins.bytes, specs: Sequence[VariantSpec], context: RenderContext
) -> tuple[pyvips.Image, DecodeInfo]:
    start = time.perf_counter()
    empty = not source if isinstance(source, builtins.bytes) else _is_empty_file(source)
    if empty:
        raise _SourceError(Failure(Reason.EMPTY_FILE, "The file is empty (0 bytes)."))
    # libvips' error buffer is per process; start clean so messages are this source's.
    pyvips.vips_lib.vips_error_clear()
    # HEIC and JPEG XL are decoded by pillow-heif / pillow-jxl (:mod:`.decoders`), upright.
    routed = _open_routed(source, context)
    try:
        if routed is not None:
            width, height, loader, orientation = routed.width, routed.height, routed.loader, 1
        else:
            header = _open(source, access="sequential")
            width, height = header.width, header.height
            loader = (
                str(header.get("vips-loader")) if header.get_typeof("vips-loader") else "unknown"
            )
            orientation = _orientation(header)
    except pyvips.Error as exc:
        raise _SourceError(_classify(exc)) from None
    if not loader.startswith(_ALLOWED_LOADERS):
        raise _SourceError(
            Failure(
                Reason.UNSUPPORTED_FORMAT,
                "Only raster images are rendered; this file is not one.",
                f"loader {loader}",
            )
        )
    if width * height > context.max_pixels:
        raise _SourceError(
            Failure(
                Reason.TOO_MANY_PIXELS,
                f"The image has {width}x{height} = {width * height} pixels, more than the "
                f"limit of {context.max_pixels}.",
            )
        )
    swapped = orientation >= 5
    ow, oh = (height, width) if swapped else (width, height)
    scale = max((_needed_scale(s, ow, oh) for s in specs), default=1.0)
    shrink = 1
    if loader in _JPEG_LOADERS:
        for factor in (8, 4, 2):
            if factor * scale <= 1.0 + 1e-9:
                shrink = factor
                break
    options: dict[str, Any] = {"access": "sequential", "fail_on": context.fail_on}
    if shrink > 1:
        options["shrink"] = shrink
    target_w = max(1, round(width * scale))
    target_h = max(1, round(height * scale))
    try:
        image = routed.decode() if routed is not None else _open(source, **options)
        load_w, load_h = image.width, image.height
        has_alpha = image.hasalpha()
        if (load_w, load_h) != (target_w, target_h):
            original_format = image.format
            if has_alpha:
                image = image.premultiply()
            image = image.resize(target_w / load_w, vscale=target_h / load_h, kernel="lanczos3")
            if has_alpha:
                image = image.unpremultiply().cast(original_format)
            image = _exact(image, target_w, target_h)
        # PQ/HLG is tone-mapped here, on the reduced image (resized in the PQ/HLG domain).
        image, colour = _to_srgb8(image, detect(source, None if routed else header))
        image = _strip(image).copy_memory()
        if orientation != 1:
            image = image.copy()
            image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
            image = image.autorot()
            image = _strip(image)
    except decoders.DecodeFailed as exc:
        raise _SourceError(exc.failure) from None
    except pyvips.Error as exc:
        raise _SourceError(_classify(exc)) from None
    info = DecodeInfo(
        loader=loader,
        source_width=width,
        source_height=height,
        orientation=orientation,
        oriented_width=ow,
        oriented_height=oh,
        shrink=shrink,
        load_width=load_w,
        load_height=load_h,
        intermediate_width=image.width,
        intermediate_height=image.height,
        loads=1,
        colour=colour,
        seconds=time.perf_counter() - start,
    )
    return image, info


def _is_empty_file(path: Path) -> bool:
    try:
        return Path(path).stat().st_size == 0
    except OSError:
        return False  # let the decoder report the missing file


def icc_description(profile: builtins.bytes) -> str:
    """Return the ``desc`` tag of an ICC profile (v2 ``desc`` or v4 ``mluc``), or ``""``."""
    try:
        count = int.from_bytes(profile[128:132], "big")
        for i in range(min(count, 100)):
            entry = profile[132 + 12 * i : 144 + 12 * i]
            if entry[:4] != b"desc":
                continue
            offset = int.from_bytes(entry[4:8], "big")
            kind = profile[offset : offset + 4]
            if kind == b"desc":
                length = int.from_bytes(profile[offset + 8 : offset + 12], "big")
                raw = profile[offset + 12 : offset + 12 + length]
                return raw.split(b"\0")[0].decode("latin-1")
            if kind == b"mluc":
                rec_len = int.from_bytes(profile[offset + 20 : offset + 24], "big")
                rec_off = int.from_bytes(profile[offset + 24 : offset + 28], "big")
                raw = profile[offset + rec_off : offset + rec_off + rec_len]
                return raw.decode("utf-16-be", errors="replace").rstrip("\0")
    except (IndexError, ValueError):
        return ""
    return ""


def _to_srgb8(image: pyvips.Image, signal: HdrSignal | None = None) -> tuple[pyvips.Image, str]:
    """Convert to 8-bit sRGB, 3 bands (+ alpha). Returns the image and what was done.

    ``signal`` (:func:`darkroom_imaging.hdr.detect`) says whether the pixels are PQ or
    HLG: those are tone-mapped (BT.2390 EETF, gamut mapping; :func:`~darkroom_imaging.
    hdr.to_sdr`), e.g. ``pq:p3->bt2390(712->203cd/m2)->sRGB``. An Ultra HDR JPEG is
    already its SDR base image here (its gain map is ignored): ``gainmap:sdr-base; …``.
    """
    if signal is not None and signal.needs_tone_mapping and image.bands >= 3:
        return to_sdr(image, signal)
    if signal is not None and signal.transfer == "gainmap":
        image, colour = _to_srgb8(image)
        return image, f"gainmap:sdr-base; {colour}"
    colour = "none"
    if image.get_typeof("icc-profile-data"):
        profile = image.get("icc-profile-data")
        desc = icc_description(profile)
        is_srgb = "srgb" in desc.lower().replace(" ", "") and image.interpretation in (
            "srgb",
            "rgb16",
        )
        if not is_srgb:
            fallback = "cmyk" if image.interpretation == "cmyk" else "srgb"
            image = image.icc_transform(
                "srgb", embedded=True, input_profile=fallback, intent="relative", depth=8
            )
            colour = f"icc:{desc or 'embedded'}->sRGB"
        else:
            colour = f"icc:{desc} (kept)"
    elif image.interpretation == "cmyk":
        # Untagged CMYK: a SWOP press profile when the system has one (:mod:`.cmyk`).
        profile = untagged_profile()
        image = image.icc_transform("srgb", input_profile=profile, intent="relative", depth=8)
        name = "libvips-cmyk" if profile == "cmyk" else Path(profile).stem
        colour = f"cmyk-untagged:{name}->sRGB"
    if image.interpretation != "srgb" or image.format != "uchar" or image.bands not in (3, 4):
        before = f"{image.interpretation}/{image.format}/{image.bands}"
        if image.interpretation in ("multiband", "histogram", "matrix", "fourier"):
            colour_bands = image.bands - (1 if image.hasalpha() else 0)
            image = image.copy(interpretation="b-w" if colour_bands < 3 else "srgb")
        image = image.colourspace("srgb")
        if image.format != "uchar":
            image = image.cast("uchar")
        if image.bands > 4:
            image = image.extract_band(0, n=4)
        colour = f"{colour}; {before}->srgb/uchar" if colour != "none" else f"{before}->srgb/uchar"
    return image, colour


def _strip(image: pyvips.Image) -> pyvips.Image:
    """Return a copy holding no metadata (EXIF, XMP, IPTC, ICC, orientation...)."""
    extra = [f for f in image.get_fields() if f not in _KEEP_FIELDS]
    if not extra:
        return image
    image = image.copy()
    for name in extra:
        image.remove(name)
    return image


def _exact(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """Trim or edge-extend by the odd pixel libvips' rounding may leave."""
    if image.width > width or image.height > height:
        image = image.crop(0, 0, min(width, image.width), min(height, image.height))
    if image.width < width or image.height < height:
        image = image.embed(0, 0, width, height, extend="copy")
    return image


def _resize_to(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    if (image.width, image.height) == (width, height):
        return image
    hscale, vscale = width / image.width, height / image.height
    if image.hasalpha():
        out = image.premultiply().resize(hscale, vscale=vscale, kernel="lanczos3")
        out = out.unpremultiply().cast("uchar")
    else:
        out = image.resize(hscale, vscale=vscale, kernel="lanczos3")
    return _exact(out, width, height)


# --- per variant --------------------------------------------------------------


def _fit(image: pyvips.Image, spec: VariantSpec, gw: float, gh: float) -> pyvips.Image:
    """Fit ``image`` (already through geometry ops) to ``spec``.

    ``gw``/``gh`` are the full-resolution source dimensions after geometry ops, so
    never-upscale is judged against the source, not the reduced intermediate.
    """
    bw, bh = spec.width, spec.height
    if spec.fit == "inside":
        scale = min(1.0, bw / gw, bh / gh)
        tw = max(1, min(bw, round(gw * scale)))
        th = max(1, min(bh, round(gh * scale)))
        return _resize_to(image, tw, th)
    if spec.fit == "fill":
        return _resize_to(image, max(1, min(bw, round(gw))), max(1, min(bh, round(gh))))
    scale = max(bw / gw, bh / gh)
    if scale > 1.0:
        # Too small to cover the box without upscaling: crop to the box's aspect
        # ratio at source resolution instead.
        k = min(gw / bw, gh / bh)
        cw, ch = max(1, round(bw * k)), max(1, round(bh * k))
        full = _resize_to(image, max(cw, round(gw)), max(ch, round(gh)))
        return _crop_at(full, cw, ch, spec)
    rw = max(bw, math.ceil(gw * scale - 1e-6))
    rh = max(bh, math.ceil(gh * scale - 1e-6))
    return _crop_at(_resize_to(image, rw, rh), bw, bh, spec)


def _crop_at(image: pyvips.Image, width: int, height: int, spec: VariantSpec) -> pyvips.Image:
    width, height = min(width, image.width), min(height, image.height)
    if (image.width, image.height) == (width, height):
        return image
    gravity = spec.gravity
    if isinstance(gravity, FocalPoint):
        left = round(gravity.x * image.width - width / 2)
        top = round(gravity.y * image.height - height / 2)
    elif gravity in ("attention", "entropy"):
        return image.smartcrop(width, height, interesting=gravity)
    else:
        left, top = (image.width - width) // 2, (image.height - height) // 2
    left = max(0, min(left, image.width - width))
    top = max(0, min(top, image.height - height))
    return image.crop(left, top, width, height)


def _render_variant(
    base: pyvips.Image,
    decode: DecodeInfo,
    spec: VariantSpec,
    context: RenderContext,
    common: dict[str, Any],
    prepared: dict[str, tuple[pyvips.Image, str, str]] | None = None,
    inside: dict[bool, tuple[str, str]] | None = None,
) -> VariantOutcome:
    start = time.perf_counter()
    key = _pixel_key(spec, base.hasalpha())
    try:
        if prepared is not None and key in prepared:
            image, thumbhash, dominant = prepared[key]
        else:
            image, thumbhash, dominant = _prepare(base, decode, spec, context, inside)
            if prepared is not None:
                prepared[key] = (image, thumbhash, dominant)
    except (pyvips.Error, ValueError) as exc:
        message = f"The variant {spec.name} could not be rendered from this image."
        return VariantFailure(spec.name, Failure(Reason.RENDER_FAILED, message, _detail(exc)))
    try:
        data = _encode(image, spec, context)
    except pyvips.Error as exc:
        message = f"The variant {spec.name} could not be encoded as {spec.format.upper()}."
        return VariantFailure(spec.name, Failure(Reason.ENCODE_FAILED, message, _detail(exc)))
    provenance = dict(common)
    provenance["spec_hash"] = spec_hash(spec)
    provenance["variant"] = spec.name
    return RenderedVariant(
        name=spec.name,
        data=data,
        format=spec.format,
        mime=spec.mime,
        width=image.width,
        height=image.height,
        seconds=time.perf_counter() - start,
        thumbhash=thumbhash,
        dominant_colour=dominant,
        provenance=provenance,
    )


def _pixel_key(spec: VariantSpec, has_alpha: bool) -> str:
    fields = spec.model_dump(
        mode="json", exclude={"name", "format", "quality", "effort", "keep_copyright"}
    )
    fields["flatten"] = has_alpha and spec.format == "jpeg"
    return json.dumps(fields, sort_keys=True)


def _prepare(
    base: pyvips.Image,
    decode: DecodeInfo,
    spec: VariantSpec,
    context: RenderContext,
    inside: dict[bool, tuple[str, str]] | None = None,
) -> tuple[pyvips.Image, str, str]:
    """Return the final pixels of ``spec`` (in memory) with its placeholders.

    ``inside`` is the per-source placeholder cache :func:`render` passes (see
    :func:`_placeholders`); ``None`` computes everything for this spec alone.
    """
    geometry, pixel = recipe_ops.split_recipe(spec.recipe)
    image = recipe_ops.apply_geometry(base, geometry)
    gw, gh = recipe_ops.geometry_size(decode.oriented_width, decode.oriented_height, geometry)
    image = _fit(image, spec, gw, gh)
    image = recipe_ops.apply_pixel_ops(image, pixel)
    if spec.watermark is not None:
        mark = spec.watermark
        text = format_template(
            mark.text, {"artist": context.artist, "copyright": context.copyright}
        )
        if text.strip("©(c) "):
            image = stamp_text(
                image,
                text,
                opacity=mark.opacity,
                position=mark.position,
                size=mark.size,
                margin=mark.margin,
                colour=mark.colour,
            )
    if spec.format == "jpeg" and image.hasalpha():
        image = image.flatten(background=hex_to_rgb(context.background)).cast("uchar")
        image = image.copy(interpretation="srgb")
    # Materialise once: placeholders and the encoder both read these pixels.
    if image is not base:
        image = image.copy_memory()
    thumbhash, dominant = _placeholders(base, image, spec, context, inside)
    return image, thumbhash, dominant


def _placeholders(
    base: pyvips.Image,
    image: pyvips.Image,
    spec: VariantSpec,
    context: RenderContext,
    inside: dict[bool, tuple[str, str]] | None,
) -> tuple[str, str]:
    """Return ``(thumbhash, dominant colour)`` for the variant ``image`` of ``spec``.

    A plain ``inside`` variant (no recipe, no watermark) is the whole intermediate
    ``base`` at some scale, so all such variants of one source get the same
    placeholders, computed once from ``base`` (its ≤100 px reduction) and cached in
    ``inside`` by whether alpha is flattened (the order of the specs does not change them; the largest variant's
    ``inside`` placeholders are what they were when each variant had its own).
    Other variants (cover crops, recipes, watermarks) get their own, from ``image``.
    """
    if inside is None or spec.fit != "inside" or spec.recipe or spec.watermark is not None:
        return placeholders(image)
    flatten = spec.format == "jpeg" and base.hasalpha()
    if flatten not in inside:
        source = base
        if flatten:
            source = base.flatten(background=hex_to_rgb(context.background)).cast("uchar")
            source = source.copy(interpretation="srgb")
        inside[flatten] = placeholders(source)
    return inside[flatten]


def _encode(image: pyvips.Image, spec: VariantSpec, context: RenderContext) -> builtins.bytes:
    keep = "icc"
    if spec.keep_copyright and (context.artist or context.copyright):
        image = image.copy()
        if context.copyright:
            image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Copyright", context.copyright)
        if context.artist:
            image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", context.artist)
        keep = "icc:exif"
    if spec.format == "jpeg":
        data = image.jpegsave_buffer(
            Q=spec.quality,
            optimize_coding=True,
            interlace=False,
            subsample_mode="on",
            keep=keep,
            profile="srgb",
        )
    elif spec.format == "webp":
        data = image.webpsave_buffer(
            Q=spec.quality,
            effort=4 if spec.effort is None else spec.effort,
            keep=keep,
            profile="srgb",
        )
    elif spec.format == "avif":
        data = image.heifsave_buffer(
            Q=spec.quality,
            effort=4 if spec.effort is None else spec.effort,
            compression="av1",
            bitdepth=8,
            keep=keep,
            profile="srgb",
        )
    else:
        data = image.pngsave_buffer(compression=6, keep=keep, profile="srgb")
    return builtins.bytes(data)


def _sha256(source: Path | builtins.bytes) -> str:
    if isinstance(source, builtins.bytes):
        return hashlib.sha256(source).hexdigest()
    digest = hashlib.sha256()
    with open(source, "rb") as handle:
        for chunk in iter(functools.partial(handle.read, 1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@functools.cache
def _engine_version() -> str:
    try:
        return metadata.version("darkroom-imaging")
    except metadata.PackageNotFoundError:
        return "0+unknown"
