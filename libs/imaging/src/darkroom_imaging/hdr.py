"""HDR sources: detection (PQ, HLG, Ultra HDR gain map) and tone mapping to 8-bit sRGB.

**Detection** (:func:`detect`, header bytes only, no pixels):

* AVIF/HEIF: the ``nclx`` colour box (``colr``, ISO/IEC 14496-12 §12.1.5) among the
  item properties ``meta/iprp/ipco`` (ISO/IEC 23008-12 §9.3), the one the ``ipma``
  associates with the primary item (``pitm``), else the first. Its code points are
  CICP (ITU-T H.273): colour primaries 1 = BT.709, 9 = BT.2020, 12 = P3-D65 (SMPTE
  EG 432-1); transfer characteristics 16 = PQ (SMPTE ST 2084 / BT.2100), 18 = HLG
  (ARIB STD-B67 / BT.2100). The content peak comes from ``clli`` (MaxCLL, cd/m²) or
  ``mdcv`` (max mastering luminance, 0.0001 cd/m² units, SMPTE ST 2086).
* PNG: the ``cICP`` chunk (PNG 3rd edition §11.3.2.6, same H.273 code points) and
  ``cLLi`` (MaxCLL in 0.0001 cd/m²), read up to the first ``IDAT``. TIFF has no CICP
  tag; a 16-bit TIFF is treated as SDR (its ICC profile, if any, applies).
* JPEG: an Ultra HDR / ISO 21496-1 gain map (libvips' ``uhdrload`` exposes
  ``gainmap-data``; otherwise the ``hdrgm`` XMP namespace in the first 256 KiB). The
  primary JPEG *is* a complete SDR rendition, so we use it as is (no tone mapping,
  its ICC applies) and ignore the gain map.

**Tone mapping** (:func:`to_sdr`), on the already reduced intermediate (the caller
resizes first: for PQ that means Lanczos in the PQ-encoded domain, which is
perceptually uniform and close to what a display's scaler does; the difference from
resizing in linear light is confined to high-contrast edges):

1. Decode to display light ``F_D`` in cd/m²: PQ EOTF (BT.2100 Table 4: m1 = 2610/16384,
   m2 = 2523/4096·128, c1 = 3424/4096, c2 = 2413/4096·32, c3 = 2392/4096·32, peak
   10000 cd/m²), or for HLG the inverse OETF (BT.2100 Table 5: a = 0.17883277,
   b = 1 − 4a, c = 0.5 − a·ln(4a)) followed by the HLG OOTF
   ``F_D = α·Y_S^(γ−1)·E`` with ``L_W`` = 1000 cd/m², γ = 1.2 + 0.42·log10(L_W/1000)
   (BT.2100 Table 5 note 5f), α = L_W, Y_S the scene luminance in the source primaries.
2. ITU-R BT.2390 EETF (Report ITU-R BT.2390, "EETF" section, 5.4.1 in BT.2390-10),
   applied to the luminance ``Y`` of ``F_D`` in the PQ domain: ``E1 = PQ⁻¹(Y)/PQ⁻¹(L_W)``,
   ``maxLum = PQ⁻¹(L_target)/PQ⁻¹(L_W)``, knee start ``KS = 1.5·maxLum − 0.5``; below
   KS identity, above it the Hermite spline ``P(T) = (2T³−3T²+1)·KS + (T³−2T²+T)·(1−KS)
   + (−2T³+3T²)·maxLum`` with ``T = (E1−KS)/(1−KS)``; black level 0 (no lift). The
   source peak ``L_W`` is MaxCLL / mastering peak from the file, else 1000 cd/m²
   (clamped to [L_target, 10000]); ``L_target`` = :data:`SDR_PEAK_NITS` = 203 cd/m²,
   the BT.2408 HDR reference (graphics) white, which becomes SDR 100 %. RGB is scaled
   by ``Y_out/Y`` (luminance-ratio tone mapping keeps hue and saturation).
3. Gamut: linear source RGB → linear BT.709 by the 3×3 matrix ``M_709⁻¹·M_src``
   (SMPTE RP 177 normalised primary matrices from the H.273 chromaticities, D65),
   then a hue-preserving clip: a pixel with a component < 0 or > 1 is desaturated
   towards its own BT.709 luminance just enough to fit (its luminance and hue angle
   in RGB are kept, only chroma is lost; cf. Report ITU-R BT.2407 §2).
4. sRGB OETF (IEC 61966-2-1), ×255, rounded to 8 bits.

Work is done with numpy in strips of :data:`_STRIP_ROWS` rows so memory stays a few
MB whatever the intermediate's size.
"""

from __future__ import annotations

import builtins
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyvips

# --- constants ------------------------------------------------------------------

PQ_M1 = 2610 / 16384
PQ_M2 = 2523 / 4096 * 128
PQ_C1 = 3424 / 4096
PQ_C2 = 2413 / 4096 * 32
PQ_C3 = 2392 / 4096 * 32
PQ_PEAK_NITS = 10000.0

HLG_A = 0.17883277
HLG_B = 1 - 4 * HLG_A
HLG_C = 0.5 - HLG_A * math.log(4 * HLG_A)
HLG_PEAK_NITS = 1000.0

DEFAULT_PQ_PEAK_NITS = 1000.0
"""Source peak assumed for PQ when the file states neither MaxCLL nor a mastering peak."""
SDR_PEAK_NITS = 203.0
"""Display light (cd/m²) that becomes SDR 100 %: the BT.2408 HDR reference white."""

TRANSFER_PQ = 16
TRANSFER_HLG = 18
PRIMARIES = {1: "bt709", 9: "bt2020", 12: "p3"}
"""CICP colour primaries code point (H.273 Table 2) → name, for the ones we convert."""

# (x, y) of R, G, B and the D65 white point (H.273 Table 2).
_CHROMATICITIES = {
    "bt709": ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060)),
    "p3": ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)),
    "bt2020": ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)),
}
_D65 = (0.3127, 0.3290)
_STRIP_ROWS = 256
_EETF_SAMPLES = 4097
_MAX_META_BYTES = 4 << 20
_MAX_HEAD_BYTES = 256 << 10


@dataclass(frozen=True, slots=True)
class HdrSignal:
    """What a source's header says about its dynamic range.

    ``transfer``: ``"pq"``, ``"hlg"``, ``"sdr"`` (CICP present, another transfer) or
    ``"gainmap"`` (Ultra HDR JPEG: SDR base + gain map). ``primaries``: ``"bt709"``,
    ``"p3"``, ``"bt2020"`` or ``"cicp-<n>"`` for a code point we do not convert
    (treated as BT.709). ``origin``: ``"nclx"``, ``"cICP"`` or ``"gainmap"``.
    ``cicp``: (primaries, transfer, matrix, full_range) when read from CICP.
    ``peak_nits``: MaxCLL or mastering peak in cd/m² when the file states one.
    """

    transfer: str
    primaries: str
    origin: str
    cicp: tuple[int, int, int, bool] | None = None
    peak_nits: float | None = None

    @property
    def needs_tone_mapping(self) -> bool:
        """True for PQ and HLG (the pixels are not SDR code values)."""
        return self.transfer in ("pq", "hlg")

    @property
    def label(self) -> str:
        """Short name for :attr:`DecodeInfo.colour`, e.g. ``pq:p3``."""
        return f"{self.transfer}:{self.primaries}"


def signal_from_cicp(
    primaries: int,
    transfer: int,
    matrix: int = 0,
    full_range: bool = True,
    *,
    origin: str = "nclx",
    peak_nits: float | None = None,
) -> HdrSignal:
    """Return the :class:`HdrSignal` of CICP code points (ITU-T H.273 Tables 2–3)."""
    name = PRIMARIES.get(primaries, f"cicp-{primaries}")
    kind = {TRANSFER_PQ: "pq", TRANSFER_HLG: "hlg"}.get(transfer, "sdr")
    return HdrSignal(kind, name, origin, (primaries, transfer, matrix, full_range), peak_nits)


# --- detection ------------------------------------------------------------------


def detect(source: Path | builtins.bytes, header: pyvips.Image | None = None) -> HdrSignal | None:
    """Return the HDR signal of ``source`` (a path or encoded bytes), or ``None`` if none.

    ``header`` is the source already opened by libvips (header only), whose metadata
    shows an Ultra HDR gain map without re-reading the file. Reads at most a few MB
    of header bytes; never raises for malformed input (returns ``None``).
    """
    if header is not None and header.get_typeof("gainmap-data"):
        return HdrSignal("gainmap", "base", "gainmap")
    try:
        head = _read(source, 0, 16)
        if head[4:8] == b"ftyp":
            return _isobmff_signal(source)
        if head[:8] == b"\x89PNG\r\n\x1a\n":
            return _png_signal(_read(source, 0, _MAX_HEAD_BYTES))
        if head[:2] == b"\xff\xd8":
            if header is None:
                xmp = _read(source, 0, _MAX_HEAD_BYTES)
            elif header.get_typeof("xmp-data"):
                xmp = builtins.bytes(header.get("xmp-data"))
            else:
                return None  # libvips saw no XMP: no hdrgm (and no file read per JPEG)
            if b"hdrgm:Version" in xmp or b'xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/' in xmp:
                return HdrSignal("gainmap", "base", "gainmap")
    except (OSError, struct.error, ValueError, IndexError):
        return None
    return None


def _read(source: Path | builtins.bytes, offset: int, length: int) -> builtins.bytes:
    if isinstance(source, builtins.bytes | bytearray | memoryview):
        return builtins.bytes(source[offset : offset + length])
    with open(source, "rb") as handle:
        handle.seek(offset)
        return handle.read(length)


def _isobmff_signal(source: Path | builtins.bytes) -> HdrSignal | None:
    """Find ``meta`` among the top-level boxes and read its colour properties."""
    size = len(source) if isinstance(source, builtins.bytes) else Path(source).stat().st_size
    pos = 0
    for _ in range(64):
        if pos + 8 > size:
            return None
        box_size, kind = struct.unpack(">I4s", _read(source, pos, 8))
        head = 8
        if box_size == 1:
            (box_size,) = struct.unpack(">Q", _read(source, pos + 8, 8))
            head = 16
        elif box_size == 0:
            box_size = size - pos
        if box_size < head:
            return None
        if kind == b"meta":
            body = _read(source, pos + head + 4, min(box_size - head - 4, _MAX_META_BYTES))
            return nclx_signal(body)
        pos += box_size
    return None


def _boxes(data: builtins.bytes) -> list[tuple[builtins.bytes, builtins.bytes]]:
    out, pos = [], 0
    while pos + 8 <= len(data):
        box_size, kind = struct.unpack_from(">I4s", data, pos)
        if box_size == 0:
            box_size = len(data) - pos
        if box_size < 8:
            break
        out.append((kind, data[pos + 8 : pos + box_size]))
        pos += box_size
    return out


def nclx_signal(meta_body: builtins.bytes) -> HdrSignal | None:
    """Return the signal of the primary item's ``nclx`` in a ``meta`` box body.

    ``meta_body`` is the ``meta`` FullBox payload after its version/flags (its child
    boxes: ``pitm``, ``iprp``...). Returns ``None`` when there is no ``nclx``.
    """
    children = dict(_boxes(meta_body))
    primary = None
    if b"pitm" in children:
        pitm = children[b"pitm"]
        primary = struct.unpack_from(">H" if pitm[0] == 0 else ">I", pitm, 4)[0]
    iprp = dict(_boxes(children.get(b"iprp", b"")))
    props = _boxes(iprp.get(b"ipco", b""))
    wanted = _associated(iprp.get(b"ipma", b""), primary)
    colours, peak = [], None
    for index, (kind, body) in enumerate(props, start=1):
        if wanted is not None and index not in wanted:
            continue
        if kind == b"colr" and body[:4] == b"nclx" and len(body) >= 11:
            p, t, m = struct.unpack_from(">HHH", body, 4)
            colours.append((p, t, m, bool(body[10] & 0x80)))
        elif kind == b"clli" and len(body) >= 4:
            max_cll = struct.unpack_from(">H", body, 0)[0]
            peak = float(max_cll) if max_cll else peak
        elif kind == b"mdcv" and len(body) >= 24 and peak is None:
            max_lum = struct.unpack_from(">I", body, 16)[0] / 10000
            peak = max_lum or None
    if not colours:
        return None if wanted is None else nclx_signal_any(props)
    p, t, m, full = colours[0]
    return signal_from_cicp(p, t, m, full, origin="nclx", peak_nits=peak)


def nclx_signal_any(props: list[tuple[builtins.bytes, builtins.bytes]]) -> HdrSignal | None:
    """The first ``nclx`` among item properties regardless of association, or ``None``."""
    for kind, body in props:
        if kind == b"colr" and body[:4] == b"nclx" and len(body) >= 11:
            p, t, m = struct.unpack_from(">HHH", body, 4)
            return signal_from_cicp(p, t, m, bool(body[10] & 0x80), origin="nclx")
    return None


def _associated(ipma: builtins.bytes, item: int | None) -> set[int] | None:
    """Property indices (1-based) ``ipma`` associates with ``item`` (ISO/IEC 23008-12 §9.3.3)."""
    if not ipma or item is None:
        return None
    version, flags = ipma[0], int.from_bytes(ipma[1:4], "big")
    (count,) = struct.unpack_from(">I", ipma, 4)
    pos = 8
    for _ in range(count):
        if version < 1:
            (item_id,) = struct.unpack_from(">H", ipma, pos)
            pos += 2
        else:
            (item_id,) = struct.unpack_from(">I", ipma, pos)
            pos += 4
        n = ipma[pos]
        pos += 1
        found = set()
        for _ in range(n):
            if flags & 1:
                (value,) = struct.unpack_from(">H", ipma, pos)
                found.add(value & 0x7FFF)
                pos += 2
            else:
                found.add(ipma[pos] & 0x7F)
                pos += 1
        if item_id == item:
            return found
    return None


def _png_signal(data: builtins.bytes) -> HdrSignal | None:
    pos, cicp, peak = 8, None, None
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IDAT" or kind == b"IEND":
            break
        if kind == b"cICP" and len(body) >= 4:
            cicp = (body[0], body[1], body[2], bool(body[3]))
        elif kind == b"cLLi" and len(body) >= 4:
            peak = struct.unpack_from(">I", body, 0)[0] / 10000 or None
        pos += 12 + length
    if cicp is None:
        return None
    return signal_from_cicp(*cicp, origin="cICP", peak_nits=peak)


# --- transfer functions (numpy, float32 or float64) --------------------------------


def pq_eotf(e: np.ndarray) -> np.ndarray:
    """PQ EOTF (SMPTE ST 2084, BT.2100 Table 4): code value [0, 1] → cd/m² [0, 10000]."""
    p = np.power(np.clip(e, 0.0, 1.0), 1 / PQ_M2)
    return PQ_PEAK_NITS * np.power(np.maximum(p - PQ_C1, 0.0) / (PQ_C2 - PQ_C3 * p), 1 / PQ_M1)


def pq_inverse_eotf(f: np.ndarray) -> np.ndarray:
    """Inverse PQ EOTF: cd/m² [0, 10000] → code value [0, 1]."""
    y = np.power(np.clip(f / PQ_PEAK_NITS, 0.0, 1.0), PQ_M1)
    return np.power((PQ_C1 + PQ_C2 * y) / (1 + PQ_C3 * y), PQ_M2)


def hlg_inverse_oetf(e: np.ndarray) -> np.ndarray:
    """HLG inverse OETF (BT.2100 Table 5): signal [0, 1] → normalised scene light [0, 1]."""
    e = np.clip(e, 0.0, 1.0)
    low = e * e / 3
    high = (np.exp((e - HLG_C) / HLG_A) + HLG_B) / 12
    return np.where(e <= 0.5, low, high)


def hlg_oetf(scene: np.ndarray) -> np.ndarray:
    """HLG OETF (BT.2100 Table 5): normalised scene light [0, 1] → signal [0, 1]."""
    scene = np.clip(scene, 0.0, 1.0)
    low = np.sqrt(3 * scene)
    high = HLG_A * np.log(np.maximum(12 * scene - HLG_B, 1e-12)) + HLG_C
    return np.where(scene <= 1 / 12, low, high)


def srgb_oetf(linear: np.ndarray) -> np.ndarray:
    """sRGB encoding (IEC 61966-2-1): linear [0, 1] → non-linear [0, 1]."""
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


def bt2390_eetf(nits: np.ndarray, source_peak: float, target_peak: float) -> np.ndarray:
    """BT.2390 EETF on luminance in cd/m²: returns cd/m² in [0, target_peak].

    Normalises in the PQ domain by the source peak, applies the Hermite-spline knee
    (see the module docstring for the formula), black level 0. ``target_peak`` ≥
    ``source_peak`` is the identity.
    """
    if target_peak >= source_peak:
        return np.minimum(nits, source_peak)
    pq_w = float(pq_inverse_eotf(np.array(source_peak)))
    max_lum = float(pq_inverse_eotf(np.array(target_peak))) / pq_w
    ks = 1.5 * max_lum - 0.5
    e1 = np.minimum(pq_inverse_eotf(nits) / pq_w, 1.0)
    t = (e1 - ks) / (1 - ks)
    t2, t3 = t * t, t * t * t
    spline = (
        (2 * t3 - 3 * t2 + 1) * ks + (t3 - 2 * t2 + t) * (1 - ks) + (-2 * t3 + 3 * t2) * max_lum
    )
    e2 = np.where(e1 < ks, e1, spline)
    return pq_eotf(e2 * pq_w)


# --- gamut ---------------------------------------------------------------------------


def rgb_to_xyz_matrix(primaries: str) -> np.ndarray:
    """Normalised primary matrix (SMPTE RP 177) of ``primaries`` with D65 white, 3×3."""
    xy = _CHROMATICITIES.get(primaries, _CHROMATICITIES["bt709"])
    columns = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in xy]).T
    wx, wy = _D65
    white = np.array([wx / wy, 1.0, (1 - wx - wy) / wy])
    return columns * np.linalg.solve(columns, white)


def gamut_matrix(primaries: str) -> np.ndarray:
    """3×3 matrix from linear ``primaries`` RGB to linear BT.709/sRGB RGB."""
    return np.linalg.solve(rgb_to_xyz_matrix("bt709"), rgb_to_xyz_matrix(primaries))


_LUMA_709 = rgb_to_xyz_matrix("bt709")[1]


def soft_clip(rgb: np.ndarray) -> np.ndarray:
    """Bring linear BT.709 ``rgb`` (…, 3) into [0, 1], desaturating towards luminance.

    A pixel already in range is unchanged; otherwise it becomes ``Y + s·(rgb − Y)``
    with the largest ``s`` ∈ [0, 1] that fits, so its luminance ``Y`` (clamped to
    [0, 1]) and its hue are kept.
    """
    y = np.clip(rgb @ _LUMA_709.astype(rgb.dtype), 0, 1)[..., None]
    chroma = rgb - y
    r, g, b = rgb[..., 0:1], rgb[..., 1:2], rgb[..., 2:3]
    lo = np.minimum(np.minimum(r, g), b)
    hi = np.maximum(np.maximum(r, g), b)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_lo = np.where(lo < 0, y / np.maximum(y - lo, 1e-12), 1.0)
        s_hi = np.where(hi > 1, (1 - y) / np.maximum(hi - y, 1e-12), 1.0)
    s = np.clip(np.minimum(s_lo, s_hi), 0.0, 1.0)
    return np.clip(y + s * chroma, 0.0, 1.0)


# --- the whole conversion ------------------------------------------------------------------


def code_scale(image: pyvips.Image) -> float:
    """Largest code value of ``image``'s band format as libvips decoded it.

    libvips' heifload shifts a 10/12-bit AVIF up to 16 bits (``bits-per-sample``
    says the original depth); 8-bit is 255, other 16-bit 65535.
    """
    if image.format == "uchar":
        return 255.0
    bits = int(image.get("bits-per-sample")) if image.get_typeof("bits-per-sample") else 16
    bits = bits if 8 <= bits <= 16 else 16
    return float(((1 << bits) - 1) << (16 - bits))


def to_display_light(codes: np.ndarray, signal: HdrSignal, source_peak: float) -> np.ndarray:
    """PQ or HLG code values [0, 1] (…, 3) in the source primaries → cd/m² (…, 3)."""
    if signal.transfer == "pq":
        return pq_eotf(codes)
    scene = hlg_inverse_oetf(codes)
    luma = rgb_to_xyz_matrix(signal.primaries)[1]
    ys = np.maximum(scene @ luma, 0.0)[..., None]
    gamma = 1.2 + 0.42 * math.log10(source_peak / 1000)
    return source_peak * np.power(ys, gamma - 1) * scene


def source_peak(signal: HdrSignal) -> float:
    """Peak display luminance (cd/m²) assumed for the EETF's source range."""
    if signal.transfer == "hlg":
        return HLG_PEAK_NITS
    peak = signal.peak_nits or DEFAULT_PQ_PEAK_NITS
    return min(PQ_PEAK_NITS, max(SDR_PEAK_NITS, peak))


def tone_map_array(codes: np.ndarray, signal: HdrSignal) -> np.ndarray:
    """Code values [0, 1] (…, 3) → sRGB-encoded values [0, 1] (…, 3), float64.

    The exact (unlookup-tabled) form of what :func:`to_sdr` computes.
    """
    peak = source_peak(signal)
    light = to_display_light(codes.astype(np.float64), signal, peak)
    return _finish(light, signal, peak, bt2390_eetf, srgb_oetf)


def _finish(
    light: np.ndarray,
    signal: HdrSignal,
    peak: float,
    eetf: Callable[[np.ndarray, float, float], np.ndarray],
    oetf: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Steps 2–4 (EETF on luminance, gamut, OETF) on display light in cd/m² (…, 3)."""
    luma = rgb_to_xyz_matrix(signal.primaries)[1].astype(light.dtype)
    y = np.maximum(light @ luma, 0)
    y_out = eetf(y, peak, SDR_PEAK_NITS)
    # Black (y == 0) stays black; negative-luma colours keep their scale 1/peak.
    ratio = np.where(y > 1e-6, y_out / np.maximum(y, 1e-6), 1.0 / SDR_PEAK_NITS)
    linear = light * (ratio[..., None] / SDR_PEAK_NITS).astype(light.dtype)
    linear = linear @ gamut_matrix(signal.primaries).T.astype(light.dtype)
    return oetf(soft_clip(linear))


class _Tables:
    """Lookup tables for one (signal, code scale): same maths, float32, ~10× faster."""

    def __init__(self, signal: HdrSignal, scale: float) -> None:
        self.peak = source_peak(signal)
        codes = np.arange(65536, dtype=np.float64) / scale
        if signal.transfer == "pq":
            self.light: np.ndarray | None = pq_eotf(codes).astype(np.float32)
        else:
            self.light = None  # HLG's OOTF depends on the pixel's luminance
        # EETF sampled uniformly in (Y / peak)^(1/4): dense in the shadows, two sqrt to index.
        grid = np.linspace(0.0, 1.0, _EETF_SAMPLES) ** 4 * self.peak
        self.grid_out = bt2390_eetf(grid, self.peak, SDR_PEAK_NITS).astype(np.float32)
        self.srgb = srgb_oetf(np.arange(65536, dtype=np.float64) / 65535).astype(np.float32)

    def eetf(self, y: np.ndarray, _peak: float, _target: float) -> np.ndarray:
        """Linear interpolation in the table (y ≥ the source peak maps to the target)."""
        u = np.sqrt(np.sqrt(np.minimum(y / np.float32(self.peak), 1))) * (_EETF_SAMPLES - 1)
        i = np.minimum(u.astype(np.int32), _EETF_SAMPLES - 2)
        frac = u - i
        return self.grid_out[i] * (1 - frac) + self.grid_out[i + 1] * frac

    def oetf(self, linear: np.ndarray) -> np.ndarray:
        """sRGB OETF by table on linear quantised to 1/65535."""
        return self.srgb[np.rint(linear * 65535).astype(np.int32)]


def to_sdr(image: pyvips.Image, signal: HdrSignal) -> tuple[pyvips.Image, str]:
    """Tone-map a PQ/HLG ``image`` (RGB or RGBA, uchar or ushort) to 8-bit sRGB.

    Returns the image (3 bands, or 4 with alpha scaled to 8 bits, interpretation
    ``srgb``) and a description such as ``pq:p3->bt2390(1000->203cd/m2)->sRGB``.
    Raises ``ValueError`` for an image with fewer than 3 colour bands or a signal
    that does not need tone mapping.
    """
    if not signal.needs_tone_mapping:
        raise ValueError(f"{signal.label} needs no tone mapping")
    alpha = image.hasalpha()
    if image.bands - int(alpha) < 3:
        raise ValueError(f"an HDR image needs 3 colour bands, this one has {image.bands}")
    scale = code_scale(image)
    tables = _Tables(signal, scale)
    pixels = image.numpy()
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    height, width = pixels.shape[:2]
    out = np.empty((height, width, 4 if alpha else 3), dtype=np.uint8)
    for top in range(0, height, _STRIP_ROWS):
        strip = pixels[top : top + _STRIP_ROWS]
        rgb = strip[..., :3]
        if tables.light is not None:
            light = tables.light[rgb.astype(np.int32)]
        else:
            codes = rgb.astype(np.float32) / np.float32(scale)
            light = to_display_light(codes, signal, tables.peak).astype(np.float32)
        encoded = _finish(light, signal, tables.peak, tables.eetf, tables.oetf)
        out[top : top + _STRIP_ROWS, :, :3] = np.rint(encoded * 255)
        if alpha:
            a = strip[..., 3].astype(np.float32) * (255.0 / scale)
            out[top : top + _STRIP_ROWS, :, 3] = np.rint(np.clip(a, 0, 255))
    result = pyvips.Image.new_from_array(out, interpretation="srgb")
    peak = source_peak(signal)
    how = f"{signal.label}->bt2390({peak:g}->{SDR_PEAK_NITS:g}cd/m2)->sRGB"
    return result, how
