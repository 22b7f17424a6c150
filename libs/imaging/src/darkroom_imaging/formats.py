"""Image formats the engine recognises, found from content (magic bytes), never from names.

Sniffing follows what ExifTool and LibRaw do for camera RAW files that share the TIFF
container: a format-specific TIFF magic (CR2 ``CR\\x02`` after the header, ORF ``IIRO``,
RW2 ``IIU``), the DNGVersion tag (0xC612) in IFD0, and for vendors that write plain TIFF
headers (Nikon, Sony, Pentax, Samsung, Kodak) the Make tag plus either a CFA image
(PhotometricInterpretation 32803) or the vendor's RAW extension. ISO-BMFF files are told
apart by the ``ftyp`` brands (``crx `` = Canon CR3, ``avif`` = AVIF, ``heic``/``mif1`` =
HEIF). HEIC and JPEG XL are decoded outside libvips (:mod:`.decoders`) and are accepted only
where that decoder is present; :func:`unsupported_reason` says why one is refused.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import BinaryIO


class Format(StrEnum):
    """Container formats, named by their usual file extension."""

    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    GIF = "gif"
    TIFF = "tiff"
    HEIC = "heic"
    AVIF = "avif"
    JXL = "jxl"
    CR2 = "cr2"
    CR3 = "cr3"
    NEF = "nef"
    NRW = "nrw"
    ARW = "arw"
    DNG = "dng"
    RAF = "raf"
    ORF = "orf"
    RW2 = "rw2"
    PEF = "pef"
    SRW = "srw"
    KDC = "kdc"


RAW_FORMATS: frozenset[Format] = frozenset(
    {
        Format.CR2,
        Format.CR3,
        Format.NEF,
        Format.NRW,
        Format.ARW,
        Format.DNG,
        Format.RAF,
        Format.ORF,
        Format.RW2,
        Format.PEF,
        Format.SRW,
        Format.KDC,
    }
)


def unsupported_reason(fmt: Format) -> str | None:
    """The sentence refusing ``fmt`` when this installation has no decoder for it, else None.

    HEIC (HEVC) needs pillow-heif's libde265 plugin and JPEG XL needs pillow-jxl-plugin (the
    pyvips-binary wheel has neither): without them accepting the file would only move the
    failure to rendering. Every other recognised format is decoded by libvips or LibRaw.
    """
    # Imported here: decoders imports this module for Format and sniff.
    from darkroom_imaging import decoders

    if decoders.decoder_present(fmt):
        return None
    return decoders.MISSING_DECODER.get(fmt, f"{fmt.name} has no decoder in this installation.")


MIME_TYPES: dict[Format, str] = {
    Format.JPEG: "image/jpeg",
    Format.PNG: "image/png",
    Format.WEBP: "image/webp",
    Format.GIF: "image/gif",
    Format.TIFF: "image/tiff",
    Format.HEIC: "image/heic",
    Format.AVIF: "image/avif",
    Format.JXL: "image/jxl",
    Format.CR2: "image/x-canon-cr2",
    Format.CR3: "image/x-canon-cr3",
    Format.NEF: "image/x-nikon-nef",
    Format.NRW: "image/x-nikon-nrw",
    Format.ARW: "image/x-sony-arw",
    Format.DNG: "image/x-adobe-dng",
    Format.RAF: "image/x-fujifilm-raf",
    Format.ORF: "image/x-olympus-orf",
    Format.RW2: "image/x-panasonic-rw2",
    Format.PEF: "image/x-pentax-pef",
    Format.SRW: "image/x-samsung-srw",
    Format.KDC: "image/x-kodak-kdc",
}

#: File extension (lower case, with dot) -> formats whose content it may hold.
EXTENSIONS: dict[str, frozenset[Format]] = {
    ".jpg": frozenset({Format.JPEG}),
    ".jpeg": frozenset({Format.JPEG}),
    ".jpe": frozenset({Format.JPEG}),
    ".jfif": frozenset({Format.JPEG}),
    ".png": frozenset({Format.PNG}),
    ".webp": frozenset({Format.WEBP}),
    ".gif": frozenset({Format.GIF}),
    ".tif": frozenset({Format.TIFF}),
    ".tiff": frozenset({Format.TIFF}),
    ".heic": frozenset({Format.HEIC}),
    ".heif": frozenset({Format.HEIC, Format.AVIF}),
    ".hif": frozenset({Format.HEIC, Format.AVIF}),
    ".avif": frozenset({Format.AVIF}),
    ".jxl": frozenset({Format.JXL}),
    ".cr2": frozenset({Format.CR2}),
    ".cr3": frozenset({Format.CR3}),
    ".nef": frozenset({Format.NEF, Format.NRW}),
    ".nrw": frozenset({Format.NRW, Format.NEF}),
    ".arw": frozenset({Format.ARW}),
    ".srf": frozenset({Format.ARW}),
    ".sr2": frozenset({Format.ARW}),
    ".dng": frozenset({Format.DNG}),
    ".raf": frozenset({Format.RAF}),
    ".orf": frozenset({Format.ORF}),
    ".rw2": frozenset({Format.RW2}),
    ".pef": frozenset({Format.PEF}),
    ".srw": frozenset({Format.SRW}),
    ".kdc": frozenset({Format.KDC}),
}

_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})

# TIFF tags (TIFF 6.0, TIFF/EP, DNG 1.7) read by the structure walk.
TAG_NEW_SUBFILE_TYPE = 254
TAG_WIDTH = 256
TAG_HEIGHT = 257
TAG_BITS = 258
TAG_COMPRESSION = 259
TAG_PHOTOMETRIC = 262
TAG_MAKE = 271
TAG_STRIP_OFFSETS = 273
TAG_ORIENTATION = 274
TAG_SAMPLES = 277
TAG_STRIP_COUNTS = 279
TAG_TILE_OFFSETS = 324
TAG_TILE_COUNTS = 325
TAG_SUBIFDS = 330
TAG_ICC = 34675
TAG_DNG_VERSION = 50706
PHOTOMETRIC_CFA = 32803
PHOTOMETRIC_LINEAR_RAW = 34892
#: DNG 1.7 JPEG XL compression, which LibRaw 0.22 without the DNG SDK cannot decode.
COMPRESSION_JPEG_XL = 52546

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_MAX_IFDS = 64
_MAX_ENTRIES = 4096
_MAX_ARRAY = 1 << 20


class TiffError(ValueError):
    """The TIFF structure is unreadable (bad byte order, IFD loop, nonsense counts)."""


@dataclass(slots=True)
class Ifd:
    """One TIFF image file directory: the tags the probe needs, already decoded.

    ``width``/``height`` in pixels (0 when absent); ``data_end`` is the largest
    ``offset + byte count`` over the strips or tiles; ``beyond_eof`` is set when a
    value or the image data of this IFD points past the end of the file.
    """

    offset: int
    width: int = 0
    height: int = 0
    bits: tuple[int, ...] = ()
    samples: int = 1
    compression: int = 0
    photometric: int | None = None
    orientation: int | None = None
    make: str | None = None
    subfile_type: int = 0
    dng_version: bool = False
    has_icc: bool = False
    data_end: int = 0
    data_bytes: int = 0
    beyond_eof: bool = False
    subifd_offsets: list[int] = field(default_factory=list)


@dataclass(slots=True)
class TiffInfo:
    """The IFD0 chain and SubIFDs of a TIFF-structured file.

    ``truncated`` is set when an IFD offset lies past the end of the file.
    """

    little_endian: bool
    magic: int
    ifds: list[Ifd]
    truncated: bool = False

    @property
    def ifd0(self) -> Ifd | None:
        """IFD0, or None when the first IFD lies past the end of the file."""
        return self.ifds[0] if self.ifds else None

    @property
    def make(self) -> str | None:
        """The first Make (tag 271) found in any IFD, stripped."""
        for ifd in self.ifds:
            if ifd.make:
                return ifd.make
        return None

    def largest(self) -> Ifd | None:
        """The IFD with the most pixels (the RAW or main image of camera files)."""
        with_pixels = [i for i in self.ifds if i.width and i.height]
        return max(with_pixels, key=lambda i: i.width * i.height) if with_pixels else None


def read_tiff(f: BinaryIO, size: int, base: int = 0) -> TiffInfo:
    """Walk the IFD0 chain and SubIFDs (tag 330) of a TIFF-structured file.

    ``base`` is the offset of the TIFF header inside ``f``; ``size`` the file size in
    bytes. Reads only directory entries and small values, never image data.
    Raises :class:`TiffError` on a structure no reader could follow.
    """
    f.seek(base)
    head = f.read(8)
    if len(head) < 8 or head[:2] not in (b"II", b"MM"):
        raise TiffError("no TIFF byte-order mark")
    le = head[:2] == b"II"
    e = "<" if le else ">"
    magic, first = struct.unpack(e + "HI", head[2:8])
    info = TiffInfo(little_endian=le, magic=magic, ifds=[])
    seen: set[int] = set()
    queue: list[tuple[int, bool]] = [(first, True)]
    while queue:
        off, chained = queue.pop(0)
        if off == 0 or off in seen:
            continue
        if len(seen) >= _MAX_IFDS:
            raise TiffError("too many IFDs")
        seen.add(off)
        if base + off + 2 > size:
            info.truncated = True
            continue
        ifd, next_off = _read_ifd(f, size, base, off, e)
        info.ifds.append(ifd)
        # A SubIFDs array may repeat one offset up to _MAX_ARRAY times: queue each once.
        queue.extend((s, False) for s in dict.fromkeys(ifd.subifd_offsets) if s not in seen)
        if chained and next_off:
            queue.append((next_off, True))
    return info


def _read_ifd(f: BinaryIO, size: int, base: int, off: int, e: str) -> tuple[Ifd, int]:
    f.seek(base + off)
    (count,) = struct.unpack(e + "H", f.read(2))
    if count == 0 or count > _MAX_ENTRIES:
        raise TiffError(f"IFD at {off} declares {count} entries")
    raw = f.read(count * 12 + 4)
    ifd = Ifd(offset=off)
    if len(raw) < count * 12 + 4:
        ifd.beyond_eof = True
        return ifd, 0
    strips: dict[int, list[int]] = {}
    for i in range(count):
        tag, typ, n = struct.unpack(e + "HHI", raw[i * 12 : i * 12 + 8])
        if typ not in _TYPE_SIZES or n > _MAX_ARRAY:
            continue
        nbytes = _TYPE_SIZES[typ] * n
        field_bytes = raw[i * 12 + 8 : i * 12 + 12]
        if tag == TAG_ICC:
            ifd.has_icc = True
            continue
        if tag not in _WANTED:
            continue
        if nbytes <= 4:
            data = field_bytes[:nbytes]
        else:
            (voff,) = struct.unpack(e + "I", field_bytes)
            if base + voff + nbytes > size:
                ifd.beyond_eof = True
                continue
            f.seek(base + voff)
            data = f.read(nbytes)
        values = list(_values(data, typ, n, e))
        if tag == TAG_MAKE:
            ifd.make = data.split(b"\0", 1)[0].decode("latin-1").strip() or None
        elif not values:
            continue
        elif tag == TAG_WIDTH:
            ifd.width = values[0]
        elif tag == TAG_HEIGHT:
            ifd.height = values[0]
        elif tag == TAG_BITS:
            ifd.bits = tuple(values)
        elif tag == TAG_SAMPLES:
            ifd.samples = values[0]
        elif tag == TAG_COMPRESSION:
            ifd.compression = values[0]
        elif tag == TAG_PHOTOMETRIC:
            ifd.photometric = values[0]
        elif tag == TAG_ORIENTATION:
            ifd.orientation = values[0]
        elif tag == TAG_NEW_SUBFILE_TYPE:
            ifd.subfile_type = values[0]
        elif tag == TAG_DNG_VERSION:
            ifd.dng_version = True
        elif tag == TAG_SUBIFDS:
            ifd.subifd_offsets = values
        else:
            strips[tag] = values
    (next_off,) = struct.unpack(e + "I", raw[count * 12 : count * 12 + 4])
    for offs_tag, counts_tag in (
        (TAG_STRIP_OFFSETS, TAG_STRIP_COUNTS),
        (TAG_TILE_OFFSETS, TAG_TILE_COUNTS),
    ):
        offs, counts = strips.get(offs_tag, []), strips.get(counts_tag, [])
        for o, c in zip(offs, counts, strict=False):
            ifd.data_end = max(ifd.data_end, base + o + c)
            ifd.data_bytes += c
    return ifd, next_off


_WANTED = frozenset(
    {
        TAG_NEW_SUBFILE_TYPE,
        TAG_WIDTH,
        TAG_HEIGHT,
        TAG_BITS,
        TAG_COMPRESSION,
        TAG_PHOTOMETRIC,
        TAG_MAKE,
        TAG_STRIP_OFFSETS,
        TAG_ORIENTATION,
        TAG_SAMPLES,
        TAG_STRIP_COUNTS,
        TAG_TILE_OFFSETS,
        TAG_TILE_COUNTS,
        TAG_SUBIFDS,
        TAG_DNG_VERSION,
    }
)


def _values(data: bytes, typ: int, n: int, e: str) -> Iterator[int]:
    if typ in (1, 7):
        yield from data[:n]
    elif typ == 3:
        yield from struct.unpack(f"{e}{n}H", data[: 2 * n])
    elif typ in (4, 13):
        yield from struct.unpack(f"{e}{n}I", data[: 4 * n])
    elif typ == 9:
        yield from struct.unpack(f"{e}{n}i", data[: 4 * n])


def tiff_format(info: TiffInfo, head: bytes, extension: str) -> Format:
    """Tell which TIFF-based format ``info`` is (see the module docstring for the rules).

    ``head`` is the first 16 bytes of the file; ``extension`` the declared one, lower
    case with dot ("" when unknown), used only for Make-only vendor formats.
    """
    if info.magic == 0x4F52 or info.magic == 0x5352:
        return Format.ORF
    if info.magic == 0x55:
        return Format.RW2
    if head[8:11] == b"CR\x02":
        return Format.CR2
    if any(i.dng_version for i in info.ifds):
        return Format.DNG
    make = (info.make or "").upper()
    has_cfa = any(i.photometric == PHOTOMETRIC_CFA for i in info.ifds)
    for prefix, formats in _VENDORS:
        if make.startswith(prefix):
            named = EXTENSIONS.get(extension, frozenset()) & formats
            if named:
                own = extension.lstrip(".")
                return Format(own) if own in named else next(iter(sorted(named)))
            if has_cfa:
                return next(iter(sorted(formats)))
    return Format.TIFF


_VENDORS: tuple[tuple[str, frozenset[Format]], ...] = (
    ("NIKON", frozenset({Format.NEF, Format.NRW})),
    ("SONY", frozenset({Format.ARW})),
    ("PENTAX", frozenset({Format.PEF})),
    ("SAMSUNG", frozenset({Format.SRW})),
    ("EASTMAN KODAK", frozenset({Format.KDC})),
    ("KODAK", frozenset({Format.KDC})),
)


def sniff(head: bytes) -> Format | None:
    """Name the container of a file from its first bytes (at least 64 are best).

    Returns None for content that is not a recognised image (HTML, SVG, text...).
    TIFF-structured content comes back as :attr:`Format.TIFF`; use :func:`read_tiff` and
    :func:`tiff_format` to tell the RAW formats that share the container.
    """
    if head[:2] == b"\xff\xd8":
        return Format.JPEG
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return Format.PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Format.GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Format.WEBP
    if head[:2] == b"\xff\x0a" or head[:12] == b"\0\0\0\x0cJXL \r\n\x87\n":
        return Format.JXL
    if head[:16] == b"FUJIFILMCCD-RAW ":
        return Format.RAF
    if head[:4] in (b"II*\0", b"MM\0*", b"IIRO", b"IIRS", b"MMOR", b"IIU\0"):
        return Format.TIFF
    if head[4:8] == b"ftyp":
        (box_size,) = struct.unpack(">I", head[:4])
        brands = {head[8:12]}
        end = min(max(box_size, 16), len(head))
        brands.update(head[i : i + 4] for i in range(16, end - 3, 4))
        if b"crx " in brands:
            return Format.CR3
        if brands & _AVIF_BRANDS:
            return Format.AVIF
        if brands & _HEIF_BRANDS:
            return Format.HEIC
    return None
