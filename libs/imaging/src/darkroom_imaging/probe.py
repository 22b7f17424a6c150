"""Header-only validation of an image file: what it really is, how big, and whether it is whole.

:func:`probe` never decodes pixels. It reads the magic bytes, walks the container
structure (JPEG markers up to the first scan, PNG chunks with their CRC-32, TIFF IFDs,
ISO-BMFF boxes, the RIFF size of WebP), reads the tail for the end marker, asks libvips
for the header of ordinary images (with the loader named by the sniffed format, never
libvips' own guess) and LibRaw for the sizes of RAW files (``open`` only, no unpack).
JPEG XL is the exception: its SizeHeader is parsed here (:func:`.decoders.jxl_header`), and
since a bare codestream has no end marker to look for, files up to
:data:`MAX_JXL_VERIFY_PIXELS` are decoded once to prove they are whole.

Checks run in this order, the first failing one giving the :class:`~.outcomes.Reason`:
``empty_file`` → ``file_too_large`` → ``unsupported_format`` (not an image, or HEIC / JPEG XL
in an installation without their decoder, :func:`.formats.unsupported_reason`) →
``extension_mismatch`` → ``decode_error`` (header unreadable) → ``too_many_pixels`` →
``truncated`` → RAW content (``raw_unsupported``, ``raw_no_image_data``). Floods of header
structures (:data:`MAX_HEADER_STRUCTURES`) and PNG metadata that inflate past
:data:`MAX_INFLATED_METADATA` are ``decode_error``: no reader, ExifTool included, should
spend minutes or gigabytes on a file that is a few megabytes.

RAW files whose container is intact but whose image data are clearly absent are refused
here, not at development: LibRaw cannot open them (I/O or data error: the data lie past
the end of the file) or the file holds fewer than :data:`MIN_RAW_BYTES_PER_PIXEL` bytes per
declared sensor pixel, which no real RAW encoding reaches (lossless RAW needs about one
byte per pixel, lossy DNG a tenth of that). The RAW development checks for black and noise
images (:mod:`.raw`) remain as a second line for files that get past this test.
"""

from __future__ import annotations

import mmap
import struct
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyvips
import rawpy

from darkroom_imaging import decoders
from darkroom_imaging.formats import (
    COMPRESSION_JPEG_XL,
    EXTENSIONS,
    MIME_TYPES,
    PHOTOMETRIC_CFA,
    PHOTOMETRIC_LINEAR_RAW,
    RAW_FORMATS,
    Format,
    Ifd,
    TiffError,
    TiffInfo,
    read_tiff,
    sniff,
    tiff_format,
    unsupported_reason,
)
from darkroom_imaging.outcomes import Failure, Reason

#: Below this many file bytes per sensor pixel a RAW file cannot hold its image data.
MIN_RAW_BYTES_PER_PIXEL = 0.01
#: Most header structures a file may have: JPEG markers (and fill bytes) before the first
#: scan, PNG chunks other than IDAT, top-level ISO-BMFF boxes. Real files have tens; a flood
#: of them costs every reader time per structure (ExifTool over 30 s for 500,000).
MAX_HEADER_STRUCTURES = 4096
#: Most bytes the compressed metadata of a PNG (zTXt, compressed iTXt, iCCP) may inflate to,
#: summed: ExifTool inflates them whole (2 GB of memory for a 1 GiB zTXt made of 1 MB).
MAX_INFLATED_METADATA = 64 * 1024 * 1024
_PNG_COMPRESSED = frozenset({b"zTXt", b"iTXt", b"iCCP"})
#: JPEG XL files up to this many pixels are decoded by the probe to prove they are whole
#: (pillow-jxl decodes on open; a cut codestream fails there). Larger ones are checked when
#: they are rendered, so the probe's memory stays within about 40 MP × 4 bytes.
MAX_JXL_VERIFY_PIXELS = 40_000_000

_VIPS_LOADERS = {
    Format.JPEG: "jpegload",
    Format.PNG: "pngload",
    Format.WEBP: "webpload",
    Format.GIF: "gifload",
    Format.TIFF: "tiffload",
    Format.HEIC: "heifload",
    Format.AVIF: "heifload",
}
_VIPS_BITS = {"uchar": 8, "char": 8, "ushort": 16, "short": 16, "uint": 32, "int": 32}
_VIPS_BITS.update({"float": 32, "double": 64, "complex": 64, "dpcomplex": 128})
# LibRaw ``flip`` (sizes.flip) -> EXIF Orientation.
_LIBRAW_FLIP = {0: 1, 3: 3, 5: 8, 6: 6}


@dataclass(frozen=True, slots=True)
class ProbeLimits:
    """Limits applied before any decoding.

    ``max_pixels``: width × height of the largest image in the file (default 200 MP, which
    refuses the 280 MP test JPEG). ``max_bytes``: file size in bytes (default 200 MiB).
    """

    max_pixels: int = 200_000_000
    max_bytes: int = 200 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Probe:
    """What the header says about an accepted image.

    ``width``/``height`` are stored pixels, before ``orientation`` (EXIF 1–8, invalid or
    missing → 1) is applied; ``display_width``/``display_height`` are after it.
    ``frames``: pages or animation frames. ``bit_depth``: bits per sample (None when
    unknown). ``color_space``: libvips interpretation (``srgb``, ``b-w``, ``cmyk``,
    ``rgb16``, ``grey16``...) or ``camera-raw``. ``icc_description``: the ICC profile's
    ``desc`` tag. For RAW files the size is LibRaw's visible image (``sizes.width``).
    """

    format: Format
    mime_type: str
    file_size: int
    width: int
    height: int
    frames: int
    bit_depth: int | None
    color_space: str | None
    icc_description: str | None
    orientation: int
    is_raw: bool

    @property
    def pixels(self) -> int:
        """width × height of one frame."""
        return self.width * self.height

    @property
    def display_width(self) -> int:
        """Width after the EXIF orientation is applied (5–8 swap the axes)."""
        return self.height if self.orientation >= 5 else self.width

    @property
    def display_height(self) -> int:
        """Height after the EXIF orientation is applied."""
        return self.width if self.orientation >= 5 else self.height

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field plus ``pixels`` and the display size."""
        d = asdict(self)
        d["format"] = self.format.value
        d.update(
            pixels=self.pixels,
            display_width=self.display_width,
            display_height=self.display_height,
        )
        return d


@dataclass(slots=True)
class _Header:
    width: int = 0
    height: int = 0
    truncated: str | None = None
    frames: int = 1
    bit_depth: int | None = None


def probe(
    path: Path, *, declared_name: str | None = None, limits: ProbeLimits = ProbeLimits()
) -> Probe | Failure:
    """Validate ``path`` from its headers and return a :class:`Probe` or a :class:`Failure`.

    ``declared_name`` is the name the file arrived with (upload name); its extension must
    agree with the content (``.jpg``/``.jpeg``/``.jpe``, ``.tif``/``.tiff``,
    ``.heic``/``.heif`` are aliases). It defaults to ``path.name``; a name without a known
    image extension is not checked. Expected problems come back as a Failure (see the
    module docstring for the order); only a missing or unreadable path raises
    :class:`OSError`.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        return Failure(Reason.EMPTY_FILE, "The file is empty (0 bytes).")
    if size > limits.max_bytes:
        return Failure(
            Reason.FILE_TOO_LARGE,
            f"The file has {size} bytes, more than the limit of {limits.max_bytes}.",
        )
    extension = Path(declared_name if declared_name is not None else path.name).suffix.lower()
    with path.open("rb") as f:
        head = f.read(4096)
        fmt = sniff(head)
        if fmt is None:
            return Failure(Reason.UNSUPPORTED_FORMAT, _describe_unknown(head))
        tiff: TiffInfo | None = None
        if fmt is Format.TIFF:
            try:
                tiff = read_tiff(f, size)
            except TiffError as exc:
                return Failure(Reason.DECODE_ERROR, "The TIFF structure is unreadable.", str(exc))
            except struct.error as exc:
                return Failure(Reason.DECODE_ERROR, "The TIFF structure is unreadable.", str(exc))
            fmt = tiff_format(tiff, head, extension)
        if (refusal := unsupported_reason(fmt)) is not None:
            return Failure(Reason.UNSUPPORTED_FORMAT, refusal)
        allowed = EXTENSIONS.get(extension)
        if allowed is not None and fmt not in allowed:
            return Failure(
                Reason.EXTENSION_MISMATCH,
                f"The name ends in {extension} but the content is {fmt.name}.",
            )
        header = _structure(fmt, f, size, head, tiff)
        if isinstance(header, Failure):
            return header
    if fmt in RAW_FORMATS:
        return _probe_raw(path, fmt, size, header, tiff, limits)
    if fmt is Format.JXL:
        return _probe_jxl(path, size, limits)
    return _probe_vips(path, fmt, size, header, limits)


def _describe_unknown(head: bytes) -> str:
    text = head[:512].lstrip().lower()
    if text.startswith((b"<?xml", b"<svg", b"<!doctype", b"<html")):
        kind = "SVG" if b"<svg" in text else "HTML/XML"
        return f"The content is {kind} text, not a supported raster image."
    return "The content does not match any supported image format."


def _too_many(width: int, height: int, limits: ProbeLimits) -> Failure | None:
    if width * height > limits.max_pixels:
        return Failure(
            Reason.TOO_MANY_PIXELS,
            f"The image declares {width}x{height} = {width * height} pixels, "
            f"more than the limit of {limits.max_pixels}.",
        )
    return None


def _structure(
    fmt: Format, f: BinaryIO, size: int, head: bytes, tiff: TiffInfo | None
) -> _Header | Failure:
    try:
        if fmt is Format.JPEG:
            return _jpeg(f, size)
        if fmt is Format.PNG:
            return _png(f, size)
        if fmt is Format.GIF:
            return _gif(f, size, head)
        if fmt is Format.WEBP:
            (riff,) = struct.unpack("<I", head[4:8])
            return _Header(truncated="the RIFF chunk" if 8 + riff > size else None)
        if tiff is not None:
            return _tiff(fmt, tiff, size)
        if fmt in (Format.HEIC, Format.AVIF, Format.CR3):
            return _isobmff(f, size)
        return _Header()
    except struct.error:
        return Failure(Reason.TRUNCATED, f"The {fmt.name} header ends before its structure does.")


def _jpeg(f: BinaryIO, size: int) -> _Header | Failure:
    """Walk markers from SOI to the first SOS; then look for EOI after it."""
    pos, header, sos, steps = 2, _Header(), 0, 0
    while sos == 0:
        steps += 1
        if steps > MAX_HEADER_STRUCTURES:
            return Failure(
                Reason.DECODE_ERROR,
                f"The JPEG has more than {MAX_HEADER_STRUCTURES} markers before its first scan.",
            )
        f.seek(pos)
        b = f.read(4)
        if len(b) < 4:
            return Failure(Reason.TRUNCATED, "The JPEG ends inside its header segments.")
        if b[0] != 0xFF:
            return Failure(
                Reason.DECODE_ERROR, f"The JPEG marker structure is corrupt at byte {pos}."
            )
        marker = b[1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xD8, 0xD9):
            return Failure(
                Reason.DECODE_ERROR, f"The JPEG has marker 0x{marker:02X} before its first scan."
            )
        (length,) = struct.unpack(">H", b[2:4])
        if length < 2:
            return Failure(Reason.DECODE_ERROR, f"The JPEG segment at byte {pos} has length 0.")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            sof = f.read(6)
            if len(sof) < 6:
                return Failure(Reason.TRUNCATED, "The JPEG ends inside its frame header.")
            precision, height, width, _comps = struct.unpack(">BHHB", sof)
            header.width, header.height, header.bit_depth = width, height, precision
        elif marker == 0xDA:
            sos = pos
        pos += 2 + length
    if header.width == 0 or header.height == 0:
        return Failure(Reason.DECODE_ERROR, "The JPEG has no frame header with a size.")
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        if m.rfind(b"\xff\xd9", sos) < 0:
            header.truncated = "the end-of-image marker (EOI)"
    return header


def _png(f: BinaryIO, size: int) -> _Header | Failure:
    """Walk every chunk checking its CRC-32 (PNG spec 5.3); IHDR gives the size."""
    header, pos, seen_end = _Header(), 8, False
    f.seek(8)
    first, others, inflated = True, 0, 0
    while pos < size:
        b = f.read(8)
        if len(b) < 8:
            break
        length, ctype = struct.unpack(">I4s", b)
        if pos + 12 + length > size:
            break
        data = f.read(length)
        (crc,) = struct.unpack(">I", f.read(4))
        if zlib.crc32(ctype + data) != crc:
            return Failure(
                Reason.DECODE_ERROR,
                f"The PNG chunk {ctype.decode('latin-1')} at byte {pos} fails its CRC check.",
            )
        if ctype != b"IDAT":
            others += 1
            if others > MAX_HEADER_STRUCTURES:
                return Failure(
                    Reason.DECODE_ERROR,
                    f"The PNG has more than {MAX_HEADER_STRUCTURES} chunks besides its image data.",
                )
        if ctype in _PNG_COMPRESSED:
            inflated += _inflated_size(ctype, data, MAX_INFLATED_METADATA - inflated)
            if inflated > MAX_INFLATED_METADATA:
                return Failure(
                    Reason.DECODE_ERROR,
                    f"The PNG's compressed metadata inflate to more than {MAX_INFLATED_METADATA} "
                    "bytes: a decompression bomb.",
                )
        if first:
            if ctype != b"IHDR" or length < 13:
                return Failure(Reason.DECODE_ERROR, "The PNG does not start with an IHDR chunk.")
            header.width, header.height, header.bit_depth = struct.unpack(">IIB", data[:9])
            first = False
        elif ctype == b"acTL" and length >= 8:
            header.frames = max(1, struct.unpack(">I", data[:4])[0])
        elif ctype == b"IEND":
            seen_end = True
            break
        pos += 12 + length
    if first:
        return Failure(Reason.TRUNCATED, "The PNG ends before its IHDR chunk.")
    if not seen_end:
        header.truncated = "the IEND chunk"
    return header


def _inflated_size(ctype: bytes, data: bytes, limit: int) -> int:
    """Bytes a zTXt, iTXt or iCCP chunk's zlib data inflate to (at most ``limit + 1``)."""
    _keyword, _, rest = data.partition(b"\0")
    if ctype == b"iTXt":
        if rest[:1] != b"\x01":  # compression flag: uncompressed text
            return 0
        rest = rest[2:].split(b"\0", 2)[-1]  # after the language tag and translated keyword
    else:
        rest = rest[1:]  # compression method
    try:
        return len(zlib.decompressobj().decompress(rest, limit + 1))
    except zlib.error:
        return 0


def _gif(f: BinaryIO, size: int, head: bytes) -> _Header:
    """Logical screen, grown to cover the first frame as decoders do (GIF89a sections 18, 20)."""
    width, height, packed = struct.unpack("<HHB", head[6:11])
    pos = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
    f.seek(pos)
    while (kind := f.read(1)) == b"!":
        f.read(1)
        while (n := f.read(1)) and n != b"\0":
            f.seek(n[0], 1)
    if kind == b",":
        left, top, w, h = struct.unpack("<HHHH", f.read(8))
        width, height = max(width, left + w), max(height, top + h)
    f.seek(max(0, size - 4096))
    tail = f.read().rstrip(b"\0")
    return _Header(width, height, None if tail.endswith(b";") else "the GIF trailer")


def _tiff(fmt: Format, tiff: TiffInfo, size: int) -> _Header | Failure:
    largest = tiff.largest()
    if largest is None:
        if fmt is Format.TIFF:
            return Failure(Reason.DECODE_ERROR, "The TIFF has no image with a width and height.")
        return _Header(truncated="an IFD" if tiff.truncated else None)
    header = _Header(largest.width, largest.height, frames=sum(1 for _ in tiff.ifds))
    main: Ifd | None = largest
    if fmt in RAW_FORMATS:
        raws = [i for i in tiff.ifds if i.photometric in (PHOTOMETRIC_CFA, PHOTOMETRIC_LINEAR_RAW)]
        main = raws[0] if raws else None
    header.bit_depth = max(main.bits) if main and main.bits else None
    if tiff.truncated:
        header.truncated = "an image file directory (IFD)"
    elif fmt in (Format.TIFF, Format.DNG):
        # Other vendors' IFDs bend TIFF rules (placeholder offsets), so only TIFF and DNG
        # get their image data extents checked.
        for ifd in tiff.ifds:
            if ifd.beyond_eof or ifd.data_end > size:
                header.truncated = f"the image data of the IFD at byte {ifd.offset}"
                break
    return header


def _isobmff(f: BinaryIO, size: int) -> _Header | Failure:
    """Top-level ISO-BMFF boxes (ISO/IEC 14496-12 4.2) must tile the file exactly.

    The size is the largest ``ispe`` property in ``meta`` (HEIF, ISO/IEC 23008-12 6.5.3):
    libvips reports 1 pixel for a width it cannot represent (2^31 - 1) instead of failing.
    """
    pos, boxes, header, kinds = 0, 0, _Header(), set()
    while pos + 8 <= size:
        boxes += 1
        if boxes > MAX_HEADER_STRUCTURES:
            return Failure(
                Reason.DECODE_ERROR,
                f"The file has more than {MAX_HEADER_STRUCTURES} top-level boxes.",
            )
        f.seek(pos)
        box_size, kind = struct.unpack(">I4s", f.read(8))
        if box_size == 1:
            (box_size,) = struct.unpack(">Q", f.read(8))
        elif box_size == 0:
            box_size = size - pos
        if box_size < 8 or pos + box_size > size:
            header.truncated = f"the box at byte {pos}"
            return header
        kinds.add(kind)
        if kind == b"meta":
            f.seek(4, 1)  # FullBox version and flags
            body = box_size - (f.tell() - pos)
            sizes = list(_ispe(f.read(min(body, _MAX_META_BYTES))))
            if sizes:
                header.width, header.height = max(sizes, key=lambda wh: wh[0] * wh[1])
        pos += box_size
    if pos < size:
        header.truncated = f"the box at byte {pos}"  # fewer bytes left than a box header
    elif not kinds & {b"meta", b"moov"}:
        header.truncated = "the metadata box (meta)"  # HEIF/AVIF need meta, CR3 moov
    return header


_MAX_META_BYTES = 4 << 20


def _ispe(boxes: bytes) -> Iterator[tuple[int, int]]:
    """``(width, height)`` of every ``ispe`` in ``boxes``, looking into ``iprp`` and ``ipco``."""
    pos = 0
    while pos + 8 <= len(boxes):
        box_size, kind = struct.unpack_from(">I4s", boxes, pos)
        if box_size < 8:
            return
        body = boxes[pos + 8 : pos + box_size]
        if kind in (b"iprp", b"ipco"):
            yield from _ispe(body)
        elif kind == b"ispe" and len(body) >= 12:
            width, height = struct.unpack_from(">II", body, 4)
            yield width, height
        pos += box_size


def _probe_raw(
    path: Path,
    fmt: Format,
    size: int,
    header: _Header,
    tiff: TiffInfo | None,
    limits: ProbeLimits,
) -> Probe | Failure:
    if header.width and (failure := _too_many(header.width, header.height, limits)):
        return failure
    if header.truncated:
        return Failure(Reason.TRUNCATED, f"The {fmt.name} file is cut short: {header.truncated}.")
    if cut := _raw_data_cut(path, fmt, size, tiff):
        return Failure(
            Reason.TRUNCATED, f"The {fmt.name} file is cut short: {cut} lies past its end."
        )
    if tiff is not None and any(i.compression == COMPRESSION_JPEG_XL for i in tiff.ifds):
        return Failure(
            Reason.RAW_UNSUPPORTED,
            "The DNG's image data use JPEG XL compression (DNG 1.7), which the RAW decoder "
            "cannot read yet; export it as a DNG without JPEG XL compression, or as TIFF or JPEG.",
        )
    declared = header.width * header.height
    try:
        with rawpy.imread(str(path)) as raw:
            sizes = raw.sizes
    except rawpy.LibRawFileUnsupportedError:
        if declared and size / declared < MIN_RAW_BYTES_PER_PIXEL:
            return _no_image_data(fmt, size, declared)
        return Failure(
            Reason.RAW_UNSUPPORTED,
            f"This {fmt.name} file comes from a camera the RAW decoder does not support.",
        )
    except (rawpy.LibRawIOError, rawpy.LibRawDataError) as exc:
        return Failure(
            Reason.RAW_NO_IMAGE_DATA,
            f"The {fmt.name} file's image data are missing or unreadable.",
            _msg(exc),
        )
    except rawpy.LibRawError as exc:
        return Failure(Reason.DECODE_ERROR, f"The {fmt.name} header cannot be read.", _msg(exc))
    if failure := _too_many(sizes.raw_width, sizes.raw_height, limits):
        return failure
    sensor = sizes.raw_width * sizes.raw_height
    if size / sensor < MIN_RAW_BYTES_PER_PIXEL:
        return _no_image_data(fmt, size, sensor)
    orientation = _LIBRAW_FLIP.get(sizes.flip, 1)
    if tiff is not None and tiff.ifd0 is not None and tiff.ifd0.orientation in range(1, 9):
        orientation = tiff.ifd0.orientation or 1
    return Probe(
        format=fmt,
        mime_type=MIME_TYPES[fmt],
        file_size=size,
        width=sizes.width,
        height=sizes.height,
        frames=1,
        bit_depth=header.bit_depth,
        color_space="camera-raw",
        icc_description=None,
        orientation=orientation,
        is_raw=True,
    )


def _probe_jxl(path: Path, size: int, limits: ProbeLimits) -> Probe | Failure:
    """JPEG XL: size and orientation from the codestream, wholeness from one decode."""
    data = path.read_bytes()
    try:
        head = decoders.jxl_header(data)
    except ValueError:
        return Failure(Reason.TRUNCATED, "The JPEG XL file ends inside its header.")
    if failure := _too_many(head.width, head.height, limits):
        return failure
    if data.startswith(b"\0\0\0\x0cJXL ") and (cut := decoders.heif_cut_at(data)) is not None:
        return Failure(
            Reason.TRUNCATED, f"The JPEG XL file is cut short: the box at byte {cut} is incomplete."
        )
    bits: int | None = None
    color_space: str | None = None
    icc: bytes | None = None
    if head.width * head.height <= MAX_JXL_VERIFY_PIXELS:
        try:
            opened = decoders.open_source(data, max_pixels=limits.max_pixels)
            image = opened.decode() if opened is not None else None
        except decoders.DecodeFailed as exc:
            return exc.failure
        if image is not None:
            bits = 16 if image.format == "ushort" else 8
            color_space = str(image.interpretation)
            if image.get_typeof("icc-profile-data"):
                icc = image.get("icc-profile-data")
            del image
    return Probe(
        format=Format.JXL,
        mime_type=MIME_TYPES[Format.JXL],
        file_size=size,
        width=head.width,
        height=head.height,
        frames=1,
        bit_depth=bits,
        color_space=color_space,
        icc_description=icc_description(icc) if icc else None,
        orientation=head.orientation,
        is_raw=False,
    )


#: TIFF-based RAW formats whose IFD0 strip tags are not byte ranges of the file
#: (Panasonic RW2 stores placeholders there; its data offset is a private tag).
_RAW_PLACEHOLDER_STRIPS = frozenset({Format.RW2})


def _raw_data_cut(path: Path, fmt: Format, size: int, tiff: TiffInfo | None) -> str | None:
    """What part of a RAW's data lies past the file's end (a card copy cut short), or None.

    TIFF-based RAWs (CR2, NEF, ARW, KDC, PEF...; DNG is checked by :func:`_tiff`): the
    strips or tiles of every IFD and SubIFD, as for TIFF. Fujifilm RAF: the embedded JPEG,
    the CFA header and the CFA data, whose offsets and lengths are big-endian 32-bit words
    at bytes 84–107 of the RAF header. Other containers (CR3's boxes) are checked by the
    structure walk.
    """
    if tiff is not None and fmt not in _RAW_PLACEHOLDER_STRIPS:
        for ifd in tiff.ifds:
            if ifd.beyond_eof or ifd.data_end > size:
                return f"the image data of the IFD at byte {ifd.offset}"
    if fmt is Format.RAF:
        with path.open("rb") as f:
            f.seek(84)
            words = f.read(24)
        if len(words) < 24:
            return "the RAF header"
        parts = struct.unpack(">6I", words)
        names = ("the embedded JPEG", "the CFA header", "the CFA data")
        for name, offset, length in zip(names, parts[0::2], parts[1::2], strict=True):
            if offset + length > size:
                return name
    return None


def _no_image_data(fmt: Format, size: int, pixels: int) -> Failure:
    return Failure(
        Reason.RAW_NO_IMAGE_DATA,
        f"The {fmt.name} file has {size} bytes for {pixels} sensor pixels: "
        "it holds metadata but not the image data.",
    )


def _msg(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode() if isinstance(arg, bytes) else str(arg)


def _probe_vips(
    path: Path, fmt: Format, size: int, header: _Header, limits: ProbeLimits
) -> Probe | Failure:
    if header.width and (failure := _too_many(header.width, header.height, limits)):
        return failure
    pyvips.vips_lib.vips_error_clear()  # the error buffer is per process: keep this file's
    try:
        image = pyvips.Operation.call(
            _VIPS_LOADERS[fmt], str(path), access=pyvips.Access.SEQUENTIAL, fail=False
        )
    except pyvips.Error as exc:
        if header.truncated:
            return Failure(Reason.TRUNCATED, f"The {fmt.name} file is cut short.")
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return Failure(
            Reason.DECODE_ERROR,
            f"The {fmt.name} header cannot be read.",
            "; ".join(dict.fromkeys(lines)) or None,
        )
    if failure := _too_many(image.width, image.height, limits):
        return failure
    if header.truncated:
        return Failure(
            Reason.TRUNCATED, f"The {fmt.name} file is cut short: {header.truncated} is missing."
        )
    fields = set(image.get_fields())
    frames = image.get("n-pages") if "n-pages" in fields else header.frames
    bits = image.get("bits-per-sample") if "bits-per-sample" in fields else None
    orientation = image.get("orientation") if "orientation" in fields else 1
    icc = image.get("icc-profile-data") if "icc-profile-data" in fields else None
    return Probe(
        format=fmt,
        mime_type=MIME_TYPES[fmt],
        file_size=size,
        width=image.width,
        height=image.height,
        frames=int(frames),
        bit_depth=int(bits) if bits else header.bit_depth or _VIPS_BITS.get(image.format),
        color_space=str(image.interpretation),
        icc_description=icc_description(icc) if icc else None,
        orientation=int(orientation) if orientation in range(1, 9) else 1,
        is_raw=False,
    )


def icc_description(profile: bytes) -> str | None:
    """The ``desc`` tag of an ICC profile (ICC.1 v2 ``desc`` or v4 ``mluc`` type), or None."""
    try:
        (count,) = struct.unpack(">I", profile[128:132])
        for i in range(min(count, 256)):
            sig, off, length = struct.unpack(">4sII", profile[132 + 12 * i : 144 + 12 * i])
            if sig != b"desc":
                continue
            tag = profile[off : off + length]
            if tag[:4] == b"desc":
                (n,) = struct.unpack(">I", tag[8:12])
                return tag[12 : 12 + n].split(b"\0", 1)[0].decode("latin-1").strip() or None
            if tag[:4] == b"mluc":
                rlen, roff = struct.unpack(">II", tag[20:28])
                return tag[roff : roff + rlen].decode("utf-16-be").strip("\0 ") or None
    except (struct.error, UnicodeDecodeError):
        return None
    return None
