"""Deterministic generators of hostile uploads, every one derived from the real corpus.

Families (the first part of :attr:`Case.name`):

* ``truncate``: a corpus file of every format cut at many offsets (every offset of the
  first 64 bytes, then seeded random ones);
* ``bitflip``: one bit flipped in the header or in the body, or 2-32 bits anywhere;
* ``dims``: declared dimensions patched to 0, 65535 or 2^31 and more (JPEG SOF, PNG IHDR
  with its CRC recomputed, GIF screen and frame, WebP VP8X/VP8/VP8L, TIFF/RAW
  ImageWidth/ImageLength, HEIF/AVIF ``ispe``);
* ``bomb``: small files that declare or expand to huge pixel counts (PNG with a real
  all-zero zlib stream, GIF screens and frames), compressed-text and ICC bombs, and
  structure floods (JPEG fill bytes and COM segments, PNG chunks, ISO-BMFF boxes, TIFF
  SubIFD fan-out) that cost the header walk time per byte;
* ``exif``: absurd EXIF values (zero denominators, NaN, 1e30 exposure, Orientation 999,
  year 0 and 9999, GPS out of range, 60 kB strings) and hostile IFD structures (loops,
  200-deep chains, lying counts and offsets) in a JPEG APP1, a PNG eXIf chunk and a TIFF;
* ``name``: hostile upload names (``../`` traversal, absolute paths, NUL and other control
  characters, RTL override, emoji, combining marks, 10,000 characters, only dots).

Randomness comes from :class:`random.Random` seeded with :data:`SEED`, the family and the
source file, so a corpus always gives the same cases in the same order.
"""

from __future__ import annotations

import math
import os
import random
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from darkroom_imaging.formats import read_tiff
from darkroom_imaging.outcomes import Reason

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[3] / "shared" / "corpus"
)
SEED = 20240507

ACCEPTED = "accepted"
"""The verdict of an upload the validator accepts."""
REFUSED = "refused"
"""The verdict when the upload event cannot be built (a name too long, or not Unicode text)."""
REJECTED = frozenset(r.value for r in Reason)
"""Any reason code of the imaging engine: the file must not be accepted."""
TOO_MANY = frozenset({Reason.TOO_MANY_PIXELS.value})
#: WebP's size comes from libwebp, not from the probe's own walk: a huge canvas that does not
#: match its frames may be refused by the decoder first.
TOO_MANY_OR_UNDECODABLE = frozenset({Reason.TOO_MANY_PIXELS.value, Reason.DECODE_ERROR.value})


@dataclass(frozen=True, slots=True)
class Case:
    """One hostile upload.

    ``name`` is ``family/source/detail`` and unique; ``data`` the file's bytes;
    ``filename`` the upload name. ``expect`` is the set of verdicts allowed (reason
    codes, :data:`ACCEPTED`, :data:`REFUSED`), None when any verdict is (then the case
    must only end without crash, hang or excess memory). ``warning`` is a substring the
    metadata warnings of an accepted verdict must contain.
    """

    name: str
    data: bytes = field(repr=False)
    filename: str
    expect: frozenset[str] | None = None
    warning: str | None = None

    @property
    def family(self) -> str:
        """The generator family: the first part of :attr:`name`."""
        return self.name.split("/", 1)[0]


def _read(rel: str) -> bytes:
    return (CORPUS / rel).read_bytes()


def _rng(*parts: object) -> random.Random:
    return random.Random("/".join(map(str, (SEED, *parts))))


def _stem(rel: str) -> str:
    return Path(rel).stem


# ----------------------------------------------------------------------------- structure


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """``(marker, offset, length)`` of each JPEG segment from SOI up to the first SOS."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        yield marker, pos, length
        if marker == 0xDA:
            return
        pos += 2 + length


def _jpeg_sof(data: bytes) -> int:
    """Offset of the first SOFn marker (baseline, progressive...)."""
    for marker, pos, _ in _jpeg_segments(data):
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return pos
    raise ValueError("no SOF marker")


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """``(type, offset, length)`` of each PNG chunk."""
    pos = 8
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        yield ctype, pos, length
        pos += 12 + length


def _png_chunk(ctype: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + ctype + payload + _crc(ctype + payload)


def _crc(data: bytes) -> bytes:
    return struct.pack(">I", zlib.crc32(data))


def _gif_descriptor(data: bytes) -> int:
    """Offset of the first image descriptor (``,``) of a GIF (GIF89a sections 18-20)."""
    packed = data[10]
    pos = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
    while data[pos : pos + 1] == b"!":
        pos += 2
        while data[pos]:
            pos += 1 + data[pos]
        pos += 1
    if data[pos : pos + 1] != b",":
        raise ValueError("no image descriptor")
    return pos


def _tiff_entries(data: bytes) -> Iterator[tuple[int, int, int]]:
    """``(entry offset, tag, type)`` of every IFD entry reachable from IFD0 and SubIFDs."""
    e = "<" if data[:2] == b"II" else ">"
    for ifd in read_tiff(BytesIO(data), len(data)).ifds:
        (count,) = struct.unpack(e + "H", data[ifd.offset : ifd.offset + 2])
        for i in range(count):
            at = ifd.offset + 2 + 12 * i
            if at + 12 <= len(data):
                tag, typ = struct.unpack(e + "HH", data[at : at + 4])
                yield at, tag, typ


def essential_end(rel: str, data: bytes) -> int | None:
    """Bytes a file needs before the probe can call it whole, or None when it makes no promise.

    JPEG: the EOI after the first scan; PNG: the IEND chunk; GIF: the trailer; WebP: the
    RIFF size; ISO-BMFF and JPEG XL: every byte; TIFF and DNG: the IFDs and image data.
    Camera RAW formats other than DNG get no data extent check (vendors bend TIFF rules).
    """
    ext = Path(rel).suffix.lower()
    if ext in (".jpg", ".jpeg"):
        sos = next(pos for marker, pos, _ in _jpeg_segments(data) if marker == 0xDA)
        return data.index(b"\xff\xd9", sos) + 2
    if ext == ".png":
        return next(pos + 12 for ctype, pos, _ in _png_chunks(data) if ctype == b"IEND")
    if ext == ".gif":
        return len(data.rstrip(b"\0"))
    if ext == ".webp":
        return 8 + struct.unpack("<I", data[4:8])[0]
    if ext in (".avif", ".heic", ".jxl"):
        return len(data)
    if ext in (".tif", ".tiff", ".dng"):
        e = "<" if data[:2] == b"II" else ">"
        ends = [0]
        for ifd in read_tiff(BytesIO(data), len(data)).ifds:
            (count,) = struct.unpack(e + "H", data[ifd.offset : ifd.offset + 2])
            ends += [ifd.data_end, ifd.offset + 2 + 12 * count + 4]
        return max(ends)
    return None


# ----------------------------------------------------------------------------- truncate

#: (corpus path, whether the intact file is already refused)
TRUNCATE_SOURCES: tuple[tuple[str, bool], ...] = (
    ("jpeg/exif_canon_40d_makernote.jpg", False),
    ("jpeg/exif_olympus_c8080wz.jpg", False),
    ("formats/progressive_960x1280.jpg", False),
    ("formats/cmyk_no_icc.jpg", False),
    ("formats/png_rgba_alpha.png", False),
    ("formats/png_16bit_rgb.png", False),
    ("formats/webp_lossy.webp", False),
    ("formats/webp_animated.webp", False),
    ("formats/webp_lossless_alpha.webp", False),
    ("formats/gif_animated.gif", False),
    ("formats/tiff_16bit_rgb_icc.tiff", False),
    ("formats/tiff_ycbcr_no_refbw_fuji_dscf0013.tif", False),
    ("formats/avif_8bit_srgb.avif", False),
    ("formats/heic_iphone.heic", False),
    ("formats/jxl_8bit_srgb.jxl", False),
    ("raw/synthetic_oiio_valid-32x32.dng", False),
    ("raw/dng_lg-h815_skia_sample_1mp.dng", False),
    ("raw/kdc_kodak_dc50.kdc", False),
    ("raw/cr2_canon_img5952.cr2", False),
    ("raw/metadata_only/exiftool_CanonRaw.cr3", True),
    ("raw/metadata_only/exiftool_Nikon.nef", True),
    ("raw/metadata_only/exiftool_FujiFilm.raf", True),
    ("raw/metadata_only/exiftool_Panasonic.rw2", True),
    ("raw/metadata_only/exifpy_sony_a7iii.arw", True),
)


def truncations() -> Iterator[Case]:
    """Every source cut at offsets 0-63 and at 136 seeded offsets (40 above 1 MB).

    A cut before :func:`essential_end` (or any cut of a file already refused) must be
    rejected; a cut after it may be accepted (trailing metadata, a gain map).
    """
    for rel, refused in TRUNCATE_SOURCES:
        data = _read(rel)
        rng = _rng("truncate", rel)
        spread = 40 if len(data) > 1_000_000 else 136
        cuts = set(range(64)) | {len(data) - 1, len(data) - 2, len(data) // 2}
        while len(cuts) < 64 + 3 + spread:
            cuts.add(rng.randrange(64, len(data)))
        end = len(data) + 1 if refused else essential_end(rel, data)
        for cut in sorted(cuts):
            expect = REJECTED if end is not None and cut < end else None
            yield Case(f"truncate/{_stem(rel)}/{cut}", data[:cut], Path(rel).name, expect)


# ----------------------------------------------------------------------------- bitflip

BITFLIP_SOURCES: tuple[str, ...] = (
    "jpeg/exif_canon_40d_makernote.jpg",
    "jpeg/exif_olympus_c8080wz.jpg",
    "jpeg/exif_fujifilm_finepix6900.jpg",
    "jpeg/exif_nikon_d70.jpg",
    "formats/png_rgba_alpha.png",
    "formats/webp_animated.webp",
    "formats/webp_lossless_alpha.webp",
    "bad/looks_like_svg.webp",
    "formats/gif_animated.gif",
    "formats/tiff_ycbcr_no_refbw_fuji_dscf0013.tif",
    "formats/avif_8bit_srgb.avif",
    "bad/bomb_17000x17000.avif",
    "formats/heic_iphone.heic",
    "raw/synthetic_oiio_valid-32x32.dng",
    "raw/dng_lg-h815_skia_sample_1mp.dng",
    "raw/kdc_kodak_dc50.kdc",
    "raw/metadata_only/exiftool_CanonRaw.cr2",
    "raw/metadata_only/exiftool_CanonRaw.cr3",
    "raw/metadata_only/exiftool_Nikon.nef",
    "raw/metadata_only/exiftool_FujiFilm.raf",
    "raw/metadata_only/exiftool_Panasonic.rw2",
    "raw/metadata_only/exifpy_sony_a7iii.arw",
)


def _flip(data: bytes, bits: list[int]) -> bytes:
    out = bytearray(data)
    for bit in bits:
        out[bit >> 3] ^= 1 << (bit & 7)
    return bytes(out)


def bitflips() -> Iterator[Case]:
    """Per source: 100 single flips in the first KiB, 50 in the rest, 50 of 2-32 bits anywhere."""
    for rel in BITFLIP_SOURCES:
        data = _read(rel)
        rng = _rng("bitflip", rel)
        head = min(1024, len(data)) * 8
        plans = [("head", [rng.randrange(head)]) for _ in range(100)]
        plans += [("body", [rng.randrange(head, len(data) * 8)]) for _ in range(50)]
        plans += [
            ("multi", [rng.randrange(len(data) * 8) for _ in range(rng.randint(2, 32))])
            for _ in range(50)
        ]
        for i, (where, bits) in enumerate(plans):
            name = f"bitflip/{_stem(rel)}/{i:03d}-{where}-{'-'.join(map(str, bits[:4]))}"
            yield Case(name, _flip(data, bits), Path(rel).name)


# ----------------------------------------------------------------------------- dims

#: (width, height) over the default 200 MP limit, for 16-bit and for 32-bit fields.
HUGE_16 = ((65535, 65535), (65535, 3100), (3100, 65535))
HUGE_32 = (*HUGE_16, (2**31, 1), (1, 2**31), (2**31 - 1, 2), (2**32 - 1, 2**32 - 1))


def _patch(data: bytes, at: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, *values)
    return bytes(out)


def _patch_tiff_size(data: bytes, width: int, height: int) -> bytes:
    """Every ImageWidth/ImageLength of every IFD set to ``width``/``height`` (as LONG)."""
    e = "<" if data[:2] == b"II" else ">"
    out = data
    for at, tag, _ in list(_tiff_entries(data)):
        if tag in (256, 257):
            out = _patch(out, at + 2, e + "HII", 4, 1, width if tag == 256 else height)
    return out


def _patch_ispe(data: bytes, width: int, height: int) -> bytes:
    out, at = data, data.find(b"ispe")
    while at >= 0:
        out = _patch(out, at + 8, ">II", width, height)
        at = data.find(b"ispe", at + 4)
    return out


def _patch_webp(data: bytes, width: int, height: int) -> bytes:
    """Canvas of a VP8X file (24 bits each, minus one), else the VP8/VP8L frame size (14 bits)."""
    out = bytearray(data)
    if data[12:16] == b"VP8X":
        out[24:27] = ((width - 1) & 0xFFFFFF).to_bytes(3, "little")
        out[27:30] = ((height - 1) & 0xFFFFFF).to_bytes(3, "little")
    elif data[12:16] == b"VP8 ":
        struct.pack_into("<HH", out, 26, width & 0x3FFF, height & 0x3FFF)
    else:
        (word,) = struct.unpack("<I", data[21:25])
        size = ((width - 1) & 0x3FFF) | (((height - 1) & 0x3FFF) << 14)
        struct.pack_into("<I", out, 21, (word & ~0x0FFFFFFF) | size)
    return bytes(out)


def _case(family: str, rel: str, detail: str, data: bytes, expect: frozenset[str] | None) -> Case:
    """A case named ``family/<source stem>/detail``, uploaded under the source's name."""
    return Case(f"{family}/{_stem(rel)}/{detail}", data, Path(rel).name, expect)


def dimensions() -> Iterator[Case]:
    """Headers patched to huge sizes (must give too_many_pixels) and to zero (rejected)."""
    for rel in JPEGS:
        data, sof = _read(rel), _jpeg_sof(_read(rel))
        for w, h in (*HUGE_16, (0, 0), (0, 480), (640, 0)):
            patched = _patch(data, sof + 5, ">HH", h, w)
            yield _case("dims", rel, f"sof-{w}x{h}", patched, TOO_MANY if w and h else REJECTED)
    data = _read(PNG)
    for w, h in (*HUGE_32, (0, 0), (0, 64)):
        ihdr = data[12:16] + struct.pack(">II", w, h) + data[24:29]
        fixed = data[:12] + ihdr + _crc(ihdr) + data[33:]
        stale = data[:12] + ihdr + data[29:]
        yield _case("dims", PNG, f"ihdr-{w}x{h}", fixed, TOO_MANY if w and h else REJECTED)
        yield _case("dims", PNG, f"ihdr-{w}x{h}-stale-crc", stale, REJECTED)
    data = _read(GIF)
    frame = _gif_descriptor(data)
    for w, h in HUGE_16:
        yield _case("dims", GIF, f"screen-{w}x{h}", _patch(data, 6, "<HH", w, h), TOO_MANY)
        yield _case("dims", GIF, f"frame-{w}x{h}", _patch(data, frame + 5, "<HH", w, h), TOO_MANY)
        at = _patch(data, frame + 1, "<HH", w, h)
        yield _case("dims", GIF, f"frame-at-{w}x{h}", at, TOO_MANY)
    for rel in WEBPS:
        for w, h in ((16383, 16383), (16384, 16384), (2**24, 2**24), (2**24, 13)):
            patched = _patch_webp(_read(rel), w, h)
            yield _case("dims", rel, f"{w}x{h}", patched, TOO_MANY_OR_UNDECODABLE)
    for rel in HEIFS:
        for w, h in HUGE_32:
            yield _case("dims", rel, f"ispe-{w}x{h}", _patch_ispe(_read(rel), w, h), TOO_MANY)
    for rel in TIFFS:
        for w, h in HUGE_32:
            yield _case("dims", rel, f"ifd-{w}x{h}", _patch_tiff_size(_read(rel), w, h), TOO_MANY)
        if rel.endswith((".tif", ".tiff")):
            yield _case("dims", rel, "ifd-0x0", _patch_tiff_size(_read(rel), 0, 0), REJECTED)


JPEGS = (
    "jpeg/exif_canon_40d_makernote.jpg",
    "formats/progressive_960x1280.jpg",
    "formats/cmyk_no_icc.jpg",
)
PNG = "formats/png_rgba_alpha.png"
GIF = "formats/gif_animated.gif"
WEBPS = ("formats/webp_lossy.webp", "formats/webp_animated.webp", "bad/looks_like_svg.webp")
HEIFS = ("formats/avif_8bit_srgb.avif", "formats/heic_iphone.heic", "bad/bomb_17000x17000.avif")
TIFFS = (
    "formats/tiff_16bit_rgb_icc.tiff",
    "formats/tiff_camera_olympus_pc260001.tif",
    "raw/synthetic_oiio_valid-32x32.dng",
    "raw/dng_lg-h815_skia_sample_1mp.dng",
    "raw/kdc_kodak_dc50.kdc",
    "raw/cr2_canon_img5952.cr2",
)


# ----------------------------------------------------------------------------- bomb


def zeros_deflate(n: int, chunk: int = 1 << 20) -> bytes:
    """A zlib stream (RFC 1950) of ``n`` zero bytes, built without compressing them all.

    One ``chunk`` of zeros is compressed once, ending in a full flush (byte-aligned, no
    back-references across it), and repeated; the Adler-32 of ``n`` zeros is
    ``(n mod 65521) << 16 | 1``. About 1 byte per kilobyte of output.
    """
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    full = block.compress(bytes(chunk)) + block.flush(zlib.Z_FULL_FLUSH)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    rest = tail.compress(bytes(n % chunk)) + tail.flush(zlib.Z_FINISH)
    adler = ((n % 65521) << 16) | 1
    return b"\x78\xda" + full * (n // chunk) + rest + struct.pack(">I", adler)


def _png_bomb(width: int, height: int, *, colour_type: int = 0, depth: int = 8) -> bytes:
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    row = 1 + (width * channels * depth + 7) // 8
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zeros_deflate(row * height))
        + _png_chunk(b"IEND", b"")
    )


def _gif(width: int, height: int, frames: list[tuple[int, int, int, int]]) -> bytes:
    """A GIF89a with a 2-colour table and one all-zero LZW frame per ``(x, y, w, h)``."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + bytes(6))
    for x, y, w, h in frames:
        out += b"\x21\xf9\x04\x04\x01\x00\x00\x00"  # graphic control: 10 ms, keep
        out += b"," + struct.pack("<HHHHB", x, y, w, h, 0)
        out += b"\x02\x02\x44\x01\x00"  # min code size 2: clear, 0, end
    return bytes(out + b";")


def bombs() -> Iterator[Case]:
    """Decompression bombs and structure floods, refused (or accepted) in bounded time and memory.

    The probe reads headers only, so a bomb under the pixel limit is accepted undecoded.
    """
    accepted, jpeg = frozenset({ACCEPTED}), _read("jpeg/exif_olympus_c8080wz.jpg")
    for w, h in ((20000, 20000), (16384, 16384), (65535, 65535)):
        yield Case(f"bomb/png/zeros-gray-{w}x{h}", _png_bomb(w, h), "b.png", TOO_MANY)
    for n, expect in ((30000, TOO_MANY), (10000, accepted)):
        rgba16 = _png_bomb(n, n, colour_type=6, depth=16)
        yield Case(f"bomb/png/zeros-rgba16-{n}x{n}", rgba16, "b.png", expect)
    png = _read(PNG)
    for kind, head in ((b"zTXt", b"k\0\0"), (b"iTXt", b"k\0\x01\0\0\0"), (b"iCCP", b"icc\0\0")):
        # Under the probe's metadata limit text is fine; an ICC profile of zeros is no profile.
        for size, expect in (
            (1 << 30, REJECTED),
            (16 << 20, None if kind == b"iCCP" else accepted),
        ):
            chunk = _png_chunk(kind, head + zeros_deflate(size))
            yield Case(
                f"bomb/png/{kind.decode()}-{size >> 20}MiB",
                png[:33] + chunk + png[33:],
                "b.png",
                expect,
            )
    flood = _png_chunk(b"tEXt", b"k\0v") * 200_000
    yield Case("bomb/png/200k-text-chunks", png[:33] + flood + png[33:], "b.png", REJECTED)
    at, n = next((at, n) for kind, at, n in _png_chunks(png) if kind == b"IDAT")
    split = b"".join(_png_chunk(b"IDAT", png[i : i + 1]) for i in range(at + 8, at + 8 + n))
    yield Case(
        "bomb/png/one-byte-idat-chunks", png[:at] + split + png[at + 12 + n :], "b.png", accepted
    )
    for w, h in ((65535, 65535), (20000, 20000)):
        yield Case(f"bomb/gif/screen-{w}x{h}", _gif(w, h, [(0, 0, 1, 1)]), "b.gif", TOO_MANY)
        yield Case(f"bomb/gif/frame-{w}x{h}", _gif(1, 1, [(0, 0, w, h)]), "b.gif", TOO_MANY)
        corner = _gif(1, 1, [(w - 1, h - 1, 1, 1)])
        yield Case(f"bomb/gif/offset-{w}x{h}", corner, "b.gif", TOO_MANY)
    for frames in (1000, 20000):
        animation = _gif(10000, 10000, [(0, 0, 10000, 10000)] * frames)
        yield Case(f"bomb/gif/{frames}-frames-10000x10000", animation, "b.gif", None)
    for name, flood in (
        ("4MiB-fill-bytes", b"\xff" * (4 << 20)),
        ("500k-empty-com", b"\xff\xfe\x00\x02" * 500_000),
        ("500k-rst-markers", b"\xff\xd0" * 500_000),
    ):
        yield Case(f"bomb/jpeg/{name}", jpeg[:2] + flood + jpeg[2:], "f.jpg", REJECTED)
    avif = _read("formats/avif_8bit_srgb.avif")
    ftyp = struct.unpack(">I", avif[:4])[0]
    free = struct.pack(">I4s", 8, b"free") * 500_000
    yield Case("bomb/avif/500k-empty-boxes", avif[:ftyp] + free + avif[ftyp:], "b.avif", REJECTED)
    yield Case("bomb/tiff/subifd-fanout", _subifd_fanout(), "fan.tif", REJECTED)


def _subifd_fanout() -> bytes:
    """A TIFF whose IFD0 lists 2^20 SubIFDs, all the first of a chain of 63 IFDs."""
    ifd0 = [
        _short(256, 1),
        _short(257, 1),
        _short(258, 8),
        _short(262, 1),
        (330, LONG, 1 << 20, Ptr(1)),
    ]
    chain: dict[int, Ptr | Off] = {k: Ptr(k + 1) for k in range(1, 63)}
    return tiff_block([ifd0] + [[_short(256, 1), _short(257, 1)]] * 63, chain=chain)


# ----------------------------------------------------------------------------- exif

# TIFF field types (TIFF 6.0 section 2; DOUBLE = 12).
ASCII, SHORT, LONG, RATIONAL, SSHORT, SRATIONAL, DOUBLE = 2, 3, 4, 5, 8, 10, 12
Entry = tuple[int, int, int, "bytes | Ptr | Off"]


@dataclass(frozen=True, slots=True)
class Ptr:
    """An IFD entry value or next-IFD link pointing at IFD number ``ifd`` of the block."""

    ifd: int


@dataclass(frozen=True, slots=True)
class Off:
    """A raw 4-byte offset written as is (past the end, odd, or pointing anywhere)."""

    value: int


def _ascii(tag: int, text: bytes | str, count: int | None = None) -> Entry:
    data = (text.encode() if isinstance(text, str) else text) + b"\0"
    return tag, ASCII, len(data) if count is None else count, data


def _short(tag: int, *v: int) -> Entry:
    return tag, SHORT, len(v), struct.pack(f"<{len(v)}H", *v)


def _sshort(tag: int, *v: int) -> Entry:
    return tag, SSHORT, len(v), struct.pack(f"<{len(v)}h", *v)


def _long(tag: int, *v: int) -> Entry:
    return tag, LONG, len(v), struct.pack(f"<{len(v)}I", *v)


def _rational(tag: int, *pairs: tuple[int, int]) -> Entry:
    return tag, RATIONAL, len(pairs), b"".join(struct.pack("<II", *p) for p in pairs)


def _srational(tag: int, *pairs: tuple[int, int]) -> Entry:
    return tag, SRATIONAL, len(pairs), b"".join(struct.pack("<ii", *p) for p in pairs)


def _double(tag: int, *v: float) -> Entry:
    return tag, DOUBLE, len(v), struct.pack(f"<{len(v)}d", *v)


def tiff_block(
    ifds: list[list[Entry]],
    *,
    chain: dict[int, Ptr | Off] | None = None,
    counts: dict[int, int] | None = None,
    image: bytes = b"",
) -> bytes:
    """A little-endian TIFF structure: header, ``image`` at byte 8, the IFDs, then values.

    ``ifds`` are lists of ``(tag, type, count, value)`` (value bytes, :class:`Ptr` or
    :class:`Off`), written sorted by tag; ``chain`` maps an IFD number to its next-IFD
    link (default 0: none); ``counts`` overrides an IFD's declared entry count (a lie).
    A :class:`Ptr` with a count over 1 is that IFD's offset repeated ``count`` times.
    """
    chain, counts = chain or {}, counts or {}
    offsets, pos = [], 8 + len(image)
    for entries in ifds:
        offsets.append(pos)
        pos += 2 + 12 * len(entries) + 4
    values = bytearray()

    def field(value: bytes | Ptr | Off, count: int) -> bytes:
        if isinstance(value, Ptr):
            if count > 1:  # the same IFD offset, ``count`` times, stored out of line
                return field(struct.pack("<I", offsets[value.ifd]) * count, count)
            return struct.pack("<I", offsets[value.ifd])
        if isinstance(value, Off):
            return struct.pack("<I", value.value)
        if len(value) <= 4:
            return value.ljust(4, b"\0")
        at = pos + len(values)
        values.extend(value + b"\0" * (len(value) & 1))
        return struct.pack("<I", at)

    out = bytearray(b"II*\0" + struct.pack("<I", offsets[0]) + image)
    for k, entries in enumerate(ifds):
        out += struct.pack("<H", counts.get(k, len(entries)))
        for tag, typ, count, value in sorted(entries, key=lambda e: e[0]):
            out += struct.pack("<HHI", tag, typ, count) + field(value, count)
        link = chain.get(k, Off(0))
        out += field(link, 1)
    return bytes(out + values)


MAKE, MODEL, ORIENTATION, SOFTWARE, ARTIST, COPYRIGHT = 0x10F, 0x110, 0x112, 0x131, 0x13B, 0x8298
EXIF_IFD, GPS_IFD, INTEROP_IFD, SUB_IFDS = 0x8769, 0x8825, 0xA005, 0x14A
EXPOSURE, FNUMBER, ISO, DATE_ORIGINAL, OFFSET_ORIGINAL = 0x829A, 0x829D, 0x8827, 0x9003, 0x9011
FLASH, FOCAL, WHITE_BALANCE, FOCAL_35, LENS = 0x9209, 0x920A, 0xA403, 0xA405, 0xA434
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON, GPS_ALT_REF, GPS_ALT = 1, 2, 3, 4, 5, 6
_IFD_OF = {t: 0 for t in (MAKE, MODEL, ORIENTATION, SOFTWARE, ARTIST, COPYRIGHT)}
_IFD_OF |= {t: 1 for t in (EXPOSURE, FNUMBER, ISO, DATE_ORIGINAL, OFFSET_ORIGINAL, FLASH, FOCAL)}
_IFD_OF |= {t: 1 for t in (WHITE_BALANCE, FOCAL_35, LENS)}
_IFD_OF |= {t: 2 for t in range(1, 7)}


def _exif_ifds() -> list[list[Entry]]:
    """IFD0, Exif IFD and GPS IFD of a plausible camera file (Make Gauntlet, 1/250 s...)."""
    return [
        [
            _ascii(MAKE, "Gauntlet"),
            _ascii(MODEL, "G1"),
            _short(ORIENTATION, 1),
            (EXIF_IFD, LONG, 1, Ptr(1)),
            (GPS_IFD, LONG, 1, Ptr(2)),
        ],
        [
            _rational(EXPOSURE, (1, 250)),
            _rational(FNUMBER, (28, 10)),
            _short(ISO, 100),
            _ascii(DATE_ORIGINAL, "2024:05:07 09:33:04"),
            _rational(FOCAL, (50, 1)),
        ],
        [
            _ascii(GPS_LAT_REF, "N"),
            _rational(GPS_LAT, (47, 1), (30, 1), (0, 1)),
            _ascii(GPS_LON_REF, "E"),
            _rational(GPS_LON, (8, 1), (30, 1), (0, 1)),
            _short(GPS_ALT_REF, 0),
            _rational(GPS_ALT, (400, 1)),
        ],
    ]


_NAN, _INF = math.nan, math.inf
_DEG = ((47, 1), (30, 1), (0, 1))
#: (label, replacement entries, expected warning substring)
EXIF_VALUES: tuple[tuple[str, list[Entry], str | None], ...] = (
    ("exposure-1-over-0", [_rational(EXPOSURE, (1, 0))], None),
    ("exposure-0-over-0", [_rational(EXPOSURE, (0, 0))], None),
    ("exposure-max-rational", [_rational(EXPOSURE, (2**32 - 1, 1))], None),
    ("exposure-negative", [_srational(EXPOSURE, (-1, 250))], None),
    ("exposure-1e30", [_double(EXPOSURE, 1e30)], None),
    ("exposure-nan", [_double(EXPOSURE, _NAN)], None),
    ("exposure-inf", [_double(EXPOSURE, _INF)], None),
    ("exposure-denormal", [_double(EXPOSURE, 5e-324)], None),
    ("fnumber-zero-denominator", [_rational(FNUMBER, (28, 0))], None),
    ("fnumber-negative", [_srational(FNUMBER, (-28, 10))], None),
    ("fnumber-1e30", [_double(FNUMBER, 1e30)], None),
    ("iso-max-long", [_long(ISO, 2**32 - 1)], None),
    ("iso-1e30", [_double(ISO, 1e30)], None),
    ("iso-negative", [_sshort(ISO, -100)], None),
    ("iso-1000-values", [_short(ISO, *range(1000))], None),
    ("focal-nan", [_double(FOCAL, _NAN)], None),
    ("focal-negative", [_srational(FOCAL, (-50, 1))], None),
    ("focal-0-over-0", [_rational(FOCAL, (0, 0)), _rational(FOCAL_35, (0, 0))], None),
    ("orientation-0", [_short(ORIENTATION, 0)], "invalid_orientation: 0"),
    ("orientation-9", [_short(ORIENTATION, 9)], "invalid_orientation: 9"),
    ("orientation-999", [_short(ORIENTATION, 999)], "invalid_orientation: 999"),
    ("orientation-65535", [_short(ORIENTATION, 65535)], "invalid_orientation: 65535"),
    ("orientation-long-max", [_long(ORIENTATION, 2**32 - 1)], "invalid_orientation"),
    ("orientation-negative", [_sshort(ORIENTATION, -1)], "invalid_orientation"),
    ("orientation-text", [_ascii(ORIENTATION, "top-left")], None),
    ("date-year-0", [_ascii(DATE_ORIGINAL, "0000:01:01 00:00:00")], "invalid_date_time_original"),
    ("date-all-zero", [_ascii(DATE_ORIGINAL, "0000:00:00 00:00:00")], None),
    ("date-year-9999", [_ascii(DATE_ORIGINAL, "9999:12:31 23:59:59")], None),
    ("date-month-13", [_ascii(DATE_ORIGINAL, "2024:13:45 25:61:61")], "invalid_date_time_original"),
    ("date-blank", [_ascii(DATE_ORIGINAL, "    :  :     :  :  ")], None),
    ("date-binary", [_ascii(DATE_ORIGINAL, b"\xff\xfe\x00\x01garbage\x80")], None),
    ("date-no-nul", [_ascii(DATE_ORIGINAL, "2024:05:07 09:33:04", count=19)], None),
    ("date-30k", [_ascii(DATE_ORIGINAL, "2024:05:07 09:33:04" * 1500)], None),
    ("offset-99-99", [_ascii(OFFSET_ORIGINAL, "+99:99")], None),
    ("offset-garbage", [_ascii(OFFSET_ORIGINAL, "\x01\x02zz")], None),
    ("gps-lat-500", [_rational(GPS_LAT, (500, 1), (0, 1), (0, 1))], "invalid_gps"),
    ("gps-lon-max", [_rational(GPS_LON, (2**32 - 1, 1), (0, 1), (0, 1))], "invalid_gps"),
    ("gps-lat-minutes-6000", [_rational(GPS_LAT, (89, 1), (6000, 1), (0, 1))], "invalid_gps"),
    ("gps-zero-denominators", [_rational(GPS_LAT, (1, 0), (1, 0), (1, 0))], None),
    ("gps-0-over-0", [_rational(GPS_LON, (0, 0), (0, 0), (0, 0))], None),
    ("gps-nan-double", [_double(GPS_LAT, _NAN, _NAN, _NAN)], None),
    ("gps-one-rational", [_rational(GPS_LAT, (47, 1))], None),
    ("gps-ref-x", [_ascii(GPS_LAT_REF, "X"), _ascii(GPS_LON_REF, "\x00")], None),
    ("gps-alt-max-below", [_rational(GPS_ALT, (2**32 - 1, 1)), _short(GPS_ALT_REF, 1)], None),
    ("gps-alt-ref-999", [_short(GPS_ALT_REF, 999)], None),
    ("make-60k", [_ascii(MAKE, "A" * 60_000)], None),
    ("artist-control-chars", [_ascii(ARTIST, "\x01\x02\x1b[31mred\x7f\x1b[0m")], None),
    ("copyright-invalid-utf8", [_ascii(COPYRIGHT, b"\xff\xfe\xed\xa0\x80\xc0\xaf")], None),
    ("software-nul-inside", [_ascii(SOFTWARE, b"ab\0cd\0\0ef")], None),
    ("lens-rtl-override", [_ascii(LENS, "\u202egpj.exe \U0001f4f7 e\u0301\u0301")], None),
    ("model-count-lie", [_ascii(MODEL, b"ABC", count=2**31 - 1)], None),
    ("flash-max-long", [_long(FLASH, 2**32 - 1)], None),
    ("flash-1e30", [_double(FLASH, 1e30)], None),
    ("white-balance-65535", [_short(WHITE_BALANCE, 65535)], None),
    (
        "wrong-type-everywhere",
        [
            _ascii(ISO, "100"),
            _ascii(FNUMBER, "f/2.8"),
            _short(DATE_ORIGINAL, 2024),
            _ascii(GPS_LAT, "47.5"),
        ],
        None,
    ),
)

#: (label, mutation of (ifds, chain, counts)) of the IFD structure itself.
EXIF_STRUCTURES: tuple[str, ...] = (
    "ifd0-next-is-itself",
    "exif-pointer-to-ifd0",
    "gps-pointer-to-exif",
    "exif-pointer-to-itself",
    "interop-pointer-loop",
    "subifd-pointer-to-ifd0",
    "chain-of-200-ifds",
    "exif-count-65535",
    "exif-count-0",
    "exif-pointer-past-end",
    "value-offset-past-end",
    "next-ifd-odd-offset",
)


def _replace(ifds: list[list[Entry]], entries: list[Entry]) -> list[list[Entry]]:
    out = [list(ifd) for ifd in ifds]
    for entry in entries:
        k = _IFD_OF[entry[0]]
        out[k] = [e for e in out[k] if e[0] != entry[0]] + [entry]
    return out


def _structure(label: str) -> tuple[list[list[Entry]], dict[int, Ptr | Off], dict[int, int]]:
    ifds, chain, counts = _exif_ifds(), {}, {}
    if label == "ifd0-next-is-itself":
        chain[0] = Ptr(0)
    elif label == "exif-pointer-to-ifd0":
        ifds[0] = [e for e in ifds[0] if e[0] != EXIF_IFD] + [(EXIF_IFD, LONG, 1, Ptr(0))]
    elif label == "gps-pointer-to-exif":
        ifds[0] = [e for e in ifds[0] if e[0] != GPS_IFD] + [(GPS_IFD, LONG, 1, Ptr(1))]
    elif label == "exif-pointer-to-itself":
        ifds[1].append((EXIF_IFD, LONG, 1, Ptr(1)))
    elif label == "interop-pointer-loop":
        ifds[1].append((INTEROP_IFD, LONG, 1, Ptr(1)))
    elif label == "subifd-pointer-to-ifd0":
        ifds[0].append((SUB_IFDS, LONG, 1, Ptr(0)))
    elif label == "chain-of-200-ifds":
        ifds += [[_short(ORIENTATION, 1)] for _ in range(200)]
        chain = {k: Ptr(k + 1) for k in range(3, 202)} | {0: Ptr(3)}
    elif label == "exif-count-65535":
        counts[1] = 65535
    elif label == "exif-count-0":
        counts[1] = 0
    elif label == "exif-pointer-past-end":
        ifds[0] = [e for e in ifds[0] if e[0] != EXIF_IFD] + [(EXIF_IFD, LONG, 1, Off(2**32 - 16))]
    elif label == "value-offset-past-end":
        ifds[0] = [e for e in ifds[0] if e[0] != MAKE] + [(MAKE, ASCII, 100, Off(2**32 - 256))]
    elif label == "next-ifd-odd-offset":
        chain[0] = Off(9)
    return ifds, chain, counts


def _tiff_host(
    ifds: list[list[Entry]], chain: dict[int, Ptr | Off], counts: dict[int, int]
) -> bytes:
    """An 8x8 RGB TIFF (pixels: the last 192 bytes of a corpus JPEG's scan) with ``ifds``."""
    pixels = _read("jpeg/exif_olympus_c8080wz.jpg")[-194:-2]
    image_tags = [
        _short(256, 8),
        _short(257, 8),
        _short(258, 8, 8, 8),
        _short(259, 1),
        _short(262, 2),
        _long(273, 8),
        _short(277, 3),
        _short(278, 8),
        _long(279, 192),
    ]
    ifd0 = [e for e in ifds[0] if e[0] not in {t[0] for t in image_tags}] + image_tags
    return tiff_block([ifd0, *ifds[1:]], chain=chain, counts=counts, image=pixels)


def _jpeg_host(block: bytes) -> bytes:
    """The corpus JPEG with its own APP1 segments removed and ``block`` as its Exif APP1."""
    data = _read("jpeg/exif_olympus_c8080wz.jpg")
    segments = list(_jpeg_segments(data))
    kept = b"".join(data[at : at + 2 + n] for m, at, n in segments if m not in (0xE1, 0xDA))
    payload = (b"Exif\0\0" + block)[:65533]
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + app1 + kept + data[segments[-1][1] :]


def _png_host(block: bytes) -> bytes:
    """The small corpus PNG with ``block`` as an eXIf chunk after IHDR."""
    data = _read("formats/png_rgba_alpha.png")
    return data[:33] + _png_chunk(b"eXIf", block) + data[33:]


def exif_cases() -> Iterator[Case]:
    """Absurd values and hostile IFDs in a JPEG, a PNG and a TIFF host, plus seeded mixes.

    The image data of the JPEG and PNG hosts are intact, so whatever their EXIF, they
    are accepted (metadata problems are warnings, never rejections); so is a TIFF whose
    values, not structure, are absurd.
    """
    accepted = frozenset({ACCEPTED})
    variants = [
        (label, _replace(_exif_ifds(), entries), {}, {}, accepted, warning)
        for label, entries, warning in EXIF_VALUES
    ]
    variants += [(label, *_structure(label), None, None) for label in EXIF_STRUCTURES]
    rng = _rng("exif", "mix")
    for i in range(150):
        picked = rng.sample(EXIF_VALUES, rng.randint(2, 6))
        entries = [e for _, es, _ in picked for e in es]
        label = f"mix-{i:03d}-" + "+".join(lbl for lbl, _, _ in picked)[:80]
        variants.append((label, _replace(_exif_ifds(), entries), {}, {}, accepted, None))
    for label, ifds, chain, counts, expect, warning in variants:
        block = tiff_block(ifds, chain=chain, counts=counts)
        yield Case(f"exif/jpeg/{label}", _jpeg_host(block), "exif.jpg", accepted, warning)
        yield Case(f"exif/png/{label}", _png_host(block), "exif.png", accepted, warning)
        yield Case(
            f"exif/tiff/{label}",
            _tiff_host(ifds, chain, counts),
            "exif.tif",
            expect,
            warning if expect else None,
        )


# ----------------------------------------------------------------------------- name

NAMES: tuple[str, ...] = (
    "../../../../etc/passwd.jpg",
    "../x.jpg",
    "..\\..\\windows\\win.ini.jpg",
    "/etc/shadow.jpg",
    "/absolute/path/to/photo.jpg",
    "C:\\Users\\me\\Pictures\\photo.jpg",
    "\\\\server\\share\\photo.jpg",
    "//server/share/photo.jpg",
    "a/../../b.jpg",
    "originals/other-gallery/other-image/x.jpg",
    "%2e%2e%2f%2e%2e%2fx.jpg",
    "..%c0%af..%c0%afx.jpg",
    "./.jpg",
    ".jpg",
    ".",
    "..",
    "...",
    "....",
    ". .",
    "." * 10_000,
    "/" * 500,
    "a\0.jpg",
    "photo.jpg\0.png",
    "\0",
    "\x01\x02\x03\x1f.jpg",
    "line\nbreak.jpg",
    "carriage\rreturn.jpg",
    "tab\t.jpg",
    "\x7fdel.jpg",
    "\x85next-line\x9f.jpg",
    "\x1b[31mred\x1b[0m.jpg",
    "\u202egpj.exe",
    "photo\u202egnp.jpg",
    "\u200b\u200c\u200d\ufeff.jpg",
    "😀📷🏔️.jpg",
    "👨‍👩‍👧‍👦" * 50 + ".jpg",
    "e\u0301\u0301\u0301\u0301.jpg",
    "Z̸̢̛͈̈a̵̧͝l̷̨̛g̴̢͝o̶̡͝.jpg",
    "ＦＵＬＬＷＩＤＴＨ．ＪＰＧ",
    "ﬁle.jpg",
    "İstanbul.JPG",
    "Straße.JPEG",
    "\ud800lone-surrogate.jpg",
    "\udcffsurrogate-escape.jpg",
    "A" * 10_000 + ".jpg",
    "é" * 10_000 + ".jpg",
    "x" * 1020 + ".jpg",
    "x" * 1021 + ".jpg",
    " ",
    "   .jpg",
    "-rf.jpg",
    "-@",
    "--help",
    "CON.jpg",
    "nul.jpg",
    "a:b.jpg",
    "*?<>|.jpg",
    "photo.JPG",
    "photo.jpeg.png",
    "photo.",
    "photo.jpg.",
    "photo.jpg ",
    "photo",
)
_PIECES = (
    "../",
    "..\\",
    "/",
    "\\",
    ".",
    "..",
    "\0",
    "\x01",
    "\n",
    "\x7f",
    "\x9b",
    "\u202e",
    "\u200f",
    "\u0301",
    "😀",
    "ß",
    "ﬁ",
    "Ⅻ",
    "%2f",
    "a",
    "photo",
    " ",
    "~",
    "$HOME",
    "`id`",
    "'",
    '"',
)
_EXTS = (".jpg", ".JPG", ".png", ".webp", ".nef", "", ".jpg.png", ".")


def _names() -> list[str]:
    rng = _rng("name", "random")
    names = list(NAMES)
    for _ in range(300):
        stem = "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 12)))
        stem *= rng.choice((1, 1, 1, 10, 300))
        names.append(stem + rng.choice(_EXTS))
    return names


def name_cases() -> Iterator[Case]:
    """Every hostile name with a real JPEG; the fixed names also with a WebP and an HTML page.

    A name over 1,024 characters or with a lone surrogate (not Unicode text) must be
    refused when the upload event is built; any other name can only change the verdict to
    extension_mismatch (or, for the HTML page, leave it unsupported_format).
    """
    contents = (
        ("jpeg", _read("jpeg/exif_olympus_c8080wz.jpg"), {ACCEPTED, "extension_mismatch"}),
        ("webp", _read("bad/looks_like_svg.webp"), {ACCEPTED, "extension_mismatch"}),
        ("html", _read("bad/html_renamed.jpg"), {"unsupported_format"}),
    )
    for i, name in enumerate(_names()):
        for kind, data, verdicts in contents if i < len(NAMES) else contents[:1]:
            refused = len(name) > 1024 or any("\ud800" <= ch <= "\udfff" for ch in name)
            expect = frozenset({REFUSED} if refused else verdicts)
            yield Case(f"name/{kind}/{i:03d}-{name[:40]!r}", data, name, expect)


FAMILIES = {
    "truncate": truncations,
    "bitflip": bitflips,
    "dims": dimensions,
    "bomb": bombs,
    "exif": exif_cases,
    "name": name_cases,
}


def all_cases() -> Iterator[Case]:
    """Every case of every family, in a fixed order."""
    for family in FAMILIES.values():
        yield from family()
