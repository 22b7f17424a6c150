"""Decoders outside libvips: HEIC (HEVC in HEIF) via pillow-heif, JPEG XL via pillow-jxl-plugin.

The pyvips-binary wheel's libheif has no HEVC decoder and its libvips no JPEG XL loader, so
these two formats are decoded here and handed to the renderer as a :class:`pyvips.Image`
(8-bit or 16-bit RGB/RGBA/grey, in memory) carrying the embedded ICC profile
(``icc-profile-data``). The rest of the decode-once pipeline (resize once, ICC → sRGB,
per-variant work) is the same as for libvips' own loaders. AVIF stays with libvips.

Presence: :func:`heif_decoder_present` asks pillow-heif's libheif which decoder plugins it
has (``pillow_heif.libheif_info()["decoders"]``) and wants an HEVC one (libde265 in the
wheel); :func:`jxl_decoder_present` wants ``pillow_jxl`` importable. The probe refuses a
format whose decoder is absent (:func:`darkroom_imaging.formats.unsupported_reason`).

Orientation:

* HEIF (ISO/IEC 23008-12 6.5.10-12) stores rotation and mirroring as the ``irot``/``imir``
  item properties, which libheif applies while decoding; the size it reports is already
  the display size. The EXIF Orientation inside a HEIC must then be ignored (HEIF 23008-12
  Annex A; Apple writes EXIF Orientation 1 or a value describing the same transform, and
  applying it again would rotate twice). pillow-heif resets it to 1 in its ``info`` and keeps
  the original in ``info["original_orientation"]``; this module never reads it.
* JPEG XL (ISO/IEC 18181-1 A.6) keeps its orientation in the codestream's ImageMetadata;
  libjxl applies it while decoding unless told to keep it, and pillow-jxl does not tell it.
  :func:`jxl_header` therefore reports the display size (axes swapped for orientations 5–8)
  and the decoded pixels are upright.

Either way :class:`OpenedSource` pixels need no further rotation (``orientation`` 1).

Memory: the size is known from the header (libheif's ``ispe`` after transforms, without
decoding; the JPEG XL SizeHeader parsed here) and checked against ``max_pixels`` before any
pixels are decoded. The decode is a full-resolution one: neither libde265 nor libjxl (as
pillow-jxl calls it) offers shrink-on-load, so a 12 MP HEIC costs its 36 MB of RGB (72 MB for
10-bit) plus the file bytes. The decoded buffer is wrapped by libvips without a copy and freed
when the renderer's reduced in-memory intermediate no longer needs it.
"""

from __future__ import annotations

import builtins
import functools
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyvips

from darkroom_imaging.formats import Format, sniff
from darkroom_imaging.outcomes import Failure, Reason

HEIF_LOADER = "pillow-heif"
JXL_LOADER = "pillow-jxl"

#: Sentences for a format whose decoder this installation lacks (probe and render say them).
MISSING_DECODER: dict[Format, str] = {
    Format.HEIC: (
        "This HEIC photo needs an HEVC decoder that this installation lacks "
        "(install pillow-heif with its libde265 plugin); convert it to JPEG to upload it."
    ),
    Format.JXL: (
        "This JPEG XL image needs a JPEG XL decoder that this installation lacks "
        "(install pillow-jxl-plugin); convert it to JPEG or PNG to upload it."
    ),
}

# Pillow/pillow-heif mode -> (bands, libvips format, interpretation).
_MODES: dict[str, tuple[int, str, str]] = {
    "RGB": (3, "uchar", "srgb"),
    "RGBA": (4, "uchar", "srgb"),
    "L": (1, "uchar", "b-w"),
    "LA": (2, "uchar", "b-w"),
    "RGB;16": (3, "ushort", "rgb16"),
    "RGBA;16": (4, "ushort", "rgb16"),
    "L;16": (1, "ushort", "grey16"),
    "I;16": (1, "ushort", "grey16"),
}


class DecodeFailed(Exception):
    """A source this module routes could not be opened or decoded; ``failure`` says why."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@functools.cache
def heif_decoder_present() -> bool:
    """True when pillow-heif is importable and its libheif has an HEVC decoder plugin."""
    try:
        import pillow_heif
    except ImportError:
        return False
    decoders: dict[str, str] = pillow_heif.libheif_info().get("decoders", {})
    return any(
        "hevc" in f"{name} {text}".lower() or "de265" in name for name, text in decoders.items()
    )


@functools.cache
def jxl_decoder_present() -> bool:
    """True when pillow-jxl-plugin (libjxl bindings and its Pillow plugin) is importable."""
    try:
        import pillow_jxl  # noqa: F401
        from pillow_jxl import JpegXLImagePlugin  # noqa: F401
    except ImportError:
        return False
    return True


def decoder_present(fmt: Format) -> bool:
    """Whether ``fmt`` can be decoded here; formats this module does not route are True."""
    if fmt is Format.HEIC:
        return heif_decoder_present()
    if fmt is Format.JXL:
        return jxl_decoder_present()
    return True


def routed_format(source: Path | builtins.bytes) -> Format | None:
    """HEIC or JXL when ``source`` (a path or encoded bytes) is decoded here, else None.

    Decided from content (:func:`~darkroom_imaging.formats.sniff`), never from the name;
    AVIF and every other format return None (libvips decodes them). Raises OSError only
    when a path cannot be read.
    """
    if isinstance(source, builtins.bytes | bytearray | memoryview):
        head = builtins.bytes(source[:64])
    else:
        with open(source, "rb") as f:
            head = f.read(64)
    fmt = sniff(head)
    return fmt if fmt in (Format.HEIC, Format.JXL) else None


# --- JPEG XL header ------------------------------------------------------------------

_JXL_SIGNATURE = b"\xff\x0a"
_JXL_CONTAINER = b"\0\0\0\x0cJXL \r\n\x87\n"
_JXL_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


@dataclass(frozen=True, slots=True)
class JxlHeader:
    """The JPEG XL SizeHeader and orientation (ISO/IEC 18181-1 A.3, A.6).

    ``width``/``height`` are stored pixels; ``orientation`` is EXIF-style 1–8; the display
    size swaps the axes for 5–8.
    """

    width: int
    height: int
    orientation: int

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) after the orientation, as libjxl decodes it."""
        if self.orientation >= 5:
            return self.height, self.width
        return self.width, self.height


class _Bits:
    """LSB-first bit reader (JPEG XL codestream bit order, 18181-1 B.2)."""

    def __init__(self, data: builtins.bytes) -> None:
        self.data, self.pos = data, 0

    def u(self, n: int) -> int:
        value = 0
        for i in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise ValueError("the codestream ends inside its header")
            value |= ((self.data[byte] >> (self.pos & 7)) & 1) << i
            self.pos += 1
        return value

    def u32_size(self) -> int:
        return 1 + self.u((9, 13, 18, 30)[self.u(2)])


def _jxl_codestream_head(data: builtins.bytes) -> builtins.bytes:
    """The first bytes of the codestream: the data itself, or the ``jxlc``/first ``jxlp`` box."""
    if data.startswith(_JXL_SIGNATURE):
        return data
    if not data.startswith(_JXL_CONTAINER):
        raise ValueError("no JPEG XL signature")
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = len(data) - pos
        if size < header:
            break
        if kind == b"jxlc":
            return data[pos + header : pos + size]
        if kind == b"jxlp":
            return data[pos + header + 4 : pos + size]  # after the 4-byte part index
        pos += size
    raise ValueError("the container has no codestream box")


def jxl_header(data: builtins.bytes) -> JxlHeader:
    """Parse the SizeHeader and orientation of a JPEG XL file (bare codestream or container).

    ``data`` needs only the first kilobytes of the file (all of it for a container whose
    codestream box comes late). Raises ValueError when they hold no readable header.
    """
    code = _jxl_codestream_head(data)
    if not code.startswith(_JXL_SIGNATURE):
        raise ValueError("the codestream lacks its signature")
    bits = _Bits(code[2:64])
    small = bits.u(1)
    height = 8 * (bits.u(5) + 1) if small else bits.u32_size()
    ratio = bits.u(3)
    if ratio:
        num, den = _JXL_RATIOS[ratio]
        width = height * num // den
    else:
        width = 8 * (bits.u(5) + 1) if small else bits.u32_size()
    orientation = 1
    all_default = bits.u(1)
    if not all_default and bits.u(1):  # extra_fields
        orientation = 1 + bits.u(3)
    return JxlHeader(width=width, height=height, orientation=orientation)


# --- opening and decoding --------------------------------------------------------------


@dataclass(slots=True)
class OpenedSource:
    """A HEIC or JPEG XL source whose header is read and whose pixels are not yet decoded.

    ``width``/``height`` are the display size (orientation already part of the decode, so
    the renderer treats the pixels as orientation 1); ``loader`` names the decoder
    (``pillow-heif`` or ``pillow-jxl``). :meth:`decode` decodes once.
    """

    format: Format
    width: int
    height: int
    loader: str
    _data: builtins.bytes = field(repr=False)

    def decode(self) -> pyvips.Image:
        """Decode the (primary) image into a :class:`pyvips.Image` of ``width`` × ``height``.

        Returns an in-memory image: 3 or 4 bands (1 or 2 for grey), ``uchar`` or ``ushort``,
        interpretation ``srgb``/``rgb16``/``b-w``/``grey16``, with ``icc-profile-data`` when
        the file embeds a profile. Raises :class:`DecodeFailed` (``truncated`` or
        ``decode_error``) for data the decoder refuses. Frees the file bytes it held.
        """
        data, self._data = self._data, b""
        try:
            image = _decode_heif(data) if self.format is Format.HEIC else _decode_jxl(data)
        except DecodeFailed:
            raise
        except (ValueError, EOFError, SyntaxError, RuntimeError, OSError) as exc:
            raise DecodeFailed(_decode_failure(self.format, exc)) from None
        if (image.width, image.height) != (self.width, self.height):
            raise DecodeFailed(
                Failure(
                    Reason.DECODE_ERROR,
                    f"The {_NAMES[self.format]} decoded to {image.width}x{image.height} pixels "
                    f"while its header says {self.width}x{self.height}.",
                )
            )
        return image


_NAMES = {Format.HEIC: "HEIC image", Format.JXL: "JPEG XL image"}


def _decode_failure(fmt: Format, exc: BaseException) -> Failure:
    # The decoders' own text ("Generic Error. Please build libjxl ...") helps nobody: the
    # sentence says what a person can do; the detail stays in the exception chain's log.
    del exc
    return Failure(
        Reason.DECODE_ERROR,
        f"The {_NAMES[fmt]} cannot be decoded: its data are damaged or cut short.",
    )


def open_source(source: Path | builtins.bytes, *, max_pixels: int) -> OpenedSource | None:
    """Open a HEIC or JPEG XL ``source`` (path or bytes) for :meth:`OpenedSource.decode`.

    Returns None when the content is another format (libvips decodes it). Reads the whole
    file into memory (the decoders want bytes) but decodes no pixels. Raises
    :class:`DecodeFailed` with ``unsupported_format`` when the decoder is absent,
    ``truncated`` when the HEIF boxes run past the end of the file, ``too_many_pixels``
    when width × height > ``max_pixels``, ``decode_error`` for an unreadable header.
    """
    fmt = routed_format(source)
    if fmt is None:
        return None
    if not decoder_present(fmt):
        raise DecodeFailed(Failure(Reason.UNSUPPORTED_FORMAT, MISSING_DECODER[fmt]))
    if isinstance(source, builtins.bytes | bytearray | memoryview):
        data = builtins.bytes(source)
    else:
        data = Path(source).read_bytes()
    try:
        if fmt is Format.HEIC:
            if (cut := heif_cut_at(data)) is not None:
                raise DecodeFailed(
                    Failure(
                        Reason.TRUNCATED,
                        f"The HEIC file is cut short: the box at byte {cut} runs past its end.",
                    )
                )
            width, height, loader = *_heif_size(data), HEIF_LOADER
        else:
            width, height = jxl_header(data).display_size
            loader = JXL_LOADER
    except DecodeFailed:
        raise
    except (ValueError, EOFError, SyntaxError, RuntimeError, OSError, struct.error) as exc:
        raise DecodeFailed(_header_failure(fmt, exc)) from None
    if width * height > max_pixels:
        raise DecodeFailed(
            Failure(
                Reason.TOO_MANY_PIXELS,
                f"The image declares {width}x{height} = {width * height} pixels, "
                f"more than the limit of {max_pixels}.",
            )
        )
    return OpenedSource(format=fmt, width=width, height=height, loader=loader, _data=data)


def _header_failure(fmt: Format, exc: BaseException) -> Failure:
    del exc
    return Failure(Reason.DECODE_ERROR, f"The {_NAMES[fmt]}'s header cannot be read.")


def heif_cut_at(data: builtins.bytes) -> int | None:
    """Offset of the first top-level ISO-BMFF box that runs past the end of ``data``, or None.

    libheif decodes a HEIC whose ``mdat`` is cut short without an error (missing tiles come
    out grey), so the box sizes (ISO/IEC 14496-12 4.2) are the truncation test.
    """
    pos, size = 0, len(data)
    while pos + 8 <= size:
        box_size, _kind = struct.unpack_from(">I4s", data, pos)
        if box_size == 1:
            if pos + 16 > size:
                return pos
            (box_size,) = struct.unpack_from(">Q", data, pos + 8)
        elif box_size == 0:
            box_size = size - pos
        if box_size < 8 or pos + box_size > size:
            return pos
        pos += box_size
    return pos if pos != size else None


def _heif_size(data: builtins.bytes) -> tuple[int, int]:
    """Display size of the primary image (libheif applies ``irot``/``imir`` to ``ispe``)."""
    import pillow_heif

    heif = pillow_heif.open_heif(data, convert_hdr_to_8bit=False)
    width, height = heif.size
    return int(width), int(height)


def _decode_heif(data: builtins.bytes) -> pyvips.Image:
    import pillow_heif

    heif = pillow_heif.open_heif(data, convert_hdr_to_8bit=False)
    primary = heif[heif.primary_index]
    mode = primary.mode
    if mode not in _MODES:
        raise DecodeFailed(
            Failure(Reason.DECODE_ERROR, f"The HEIC image's pixel layout {mode} is not supported.")
        )
    width, height = primary.size
    pixels = primary.data  # decodes the primary image (tiles of a grid image included)
    profile = primary.info.get("icc_profile")
    icc = builtins.bytes(profile) if isinstance(profile, builtins.bytes | bytearray) else None
    del heif, primary
    return _wrap(pixels, width, height, mode, icc)


def _decode_jxl(data: builtins.bytes) -> pyvips.Image:
    import io

    from PIL import Image
    from pillow_jxl import JpegXLImagePlugin  # noqa: F401  (registers the JXL opener)

    with Image.open(io.BytesIO(data), formats=["JXL"]) as im:  # pillow-jxl decodes on open
        mode = im.mode
        if mode == "F" or mode not in _MODES:
            converted = im.convert("RGBA" if "A" in mode else "RGB")
            mode, im_pixels = converted.mode, converted.tobytes()
        else:
            im_pixels = im.tobytes()
        width, height = im.size
        icc = im.info.get("icc_profile")
    return _wrap(im_pixels, width, height, mode, icc)


def _wrap(
    pixels: Any, width: int, height: int, mode: str, icc: builtins.bytes | None
) -> pyvips.Image:
    """A libvips image over ``pixels`` (interleaved, no row padding) without a copy."""
    bands, fmt, interpretation = _MODES[mode]
    image = pyvips.Image.new_from_memory(pixels, width, height, bands, fmt)
    image = image.copy(interpretation=interpretation)
    if icc:
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", builtins.bytes(icc))
    return image
