"""Placeholders shown before a variant loads: ThumbHash and dominant colour.

:func:`thumbhash` is a numpy port of Evan Wallace's reference ThumbHash encoder
(https://evanw.github.io/thumbhash/, MIT): a DCT of the image's L/P/Q (and alpha)
channels packed into ~25 bytes. :func:`placeholders` computes both values from one
≤100 px copy of a rendered variant.
"""

from __future__ import annotations

import base64
import math

import numpy as np
import pyvips

MAX_SIDE = 100


def _round(x: float) -> int:
    # JavaScript Math.round (half up), which the reference encoder uses.
    return math.floor(x + 0.5)


def thumbhash_bytes(rgba: np.ndarray) -> bytes:
    """Return the ThumbHash of ``rgba``, an ``(h, w, 4)`` uint8 array with w, h ≤ 100.

    Raises ``ValueError`` for a larger or wrongly shaped array.
    """
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"expected an (h, w, 4) array, got shape {rgba.shape}")
    h, w = rgba.shape[:2]
    if w > MAX_SIDE or h > MAX_SIDE or w < 1 or h < 1:
        raise ValueError(f"{w}x{h} doesn't fit in 100x100")
    # Channel-first planes (contiguous): r, g, b, a in 0..1.
    px = np.moveaxis(rgba, 2, 0).astype(np.float64, order="C") / 255.0
    alpha = px[3]
    if bool((rgba[..., 3] == 255).all()):
        # Opaque (the usual case): the average-colour blend below is the identity.
        has_alpha = False
        r, g, b = px[0], px[1], px[2]
    else:
        avg_a = float(alpha.sum())
        avg = (px[:3] * alpha).sum(axis=(1, 2)) / avg_a if avg_a else np.zeros(3)
        has_alpha = avg_a < w * h
        r, g, b = (avg[i] * (1 - alpha) + px[i] * alpha for i in range(3))
    l_limit = 5 if has_alpha else 7
    lx = max(1, _round(l_limit * w / max(w, h)))
    ly = max(1, _round(l_limit * h / max(w, h)))
    l_ch = (r + g + b) / 3
    p_ch = (r + g) / 2 - b
    q_ch = r - g

    xs = np.arange(w) + 0.5
    ys = np.arange(h) + 0.5

    def encode(channel: np.ndarray, nx: int, ny: int) -> tuple[float, list[float], float]:
        # Every (cx, cy) coefficient at once: cos(π/h·cy·y) · channel · cos(π/w·cx·x)ᵀ.
        fy = np.cos(math.pi / h * np.outer(np.arange(ny), ys))
        fx = np.cos(math.pi / w * np.outer(np.arange(nx), xs))
        # Rounded to 1e-12 so that coefficients which are exactly 0 (a flat channel,
        # a symmetric alpha edge) are 0.0, not summation-order noise that the AC
        # normalisation below would blow up or that would tip a .5 tie either way.
        coeffs = np.round((fy @ channel @ fx.T) / (w * h), 12)
        dc, ac = float(coeffs[0, 0]), []
        for cy in range(ny):
            cx = 0
            while cx * ny < nx * (ny - cy):
                if cx or cy:
                    ac.append(float(coeffs[cy, cx]))
                cx += 1
        scale = max((abs(f) for f in ac), default=0.0)
        if scale:
            ac = [0.5 + 0.5 / scale * f for f in ac]
        return dc, ac, scale

    l_dc, l_ac, l_scale = encode(l_ch, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = encode(p_ch, 3, 3)
    q_dc, q_ac, q_scale = encode(q_ch, 3, 3)
    landscape = w > h
    header24 = (
        _round(63 * l_dc)
        | (_round(31.5 + 31.5 * p_dc) << 6)
        | (_round(31.5 + 31.5 * q_dc) << 12)
        | (_round(31 * l_scale) << 18)
        | (int(has_alpha) << 23)
    )
    header16 = (
        (ly if landscape else lx)
        | (_round(63 * p_scale) << 3)
        | (_round(63 * q_scale) << 9)
        | (int(landscape) << 15)
    )
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    channels = [l_ac, p_ac, q_ac]
    if has_alpha:
        a_dc, a_ac, a_scale = encode(alpha, 5, 5)
        out.append(_round(15 * a_dc) | (_round(15 * a_scale) << 4))
        channels.append(a_ac)
    start = len(out)
    index = 0
    for ac in channels:
        for f in ac:
            pos = start + (index >> 1)
            while len(out) <= pos:
                out.append(0)
            out[pos] |= _round(15 * f) << ((index & 1) << 2)
            index += 1
    return bytes(out)


def thumbhash_average_rgba(hash_bytes: bytes) -> tuple[float, float, float, float]:
    """Decode the average colour stored in a ThumbHash: ``(r, g, b, a)`` in 0..1."""
    header = hash_bytes[0] | (hash_bytes[1] << 8) | (hash_bytes[2] << 16)
    l_dc = (header & 63) / 63
    p_dc = ((header >> 6) & 63) / 31.5 - 1
    q_dc = ((header >> 12) & 63) / 31.5 - 1
    has_alpha = header >> 23
    a = (hash_bytes[5] & 15) / 15 if has_alpha else 1.0
    b = l_dc - 2 / 3 * p_dc
    r = (3 * l_dc - b + q_dc) / 2
    g = r - q_dc
    clamp = lambda v: max(0.0, min(1.0, v))  # noqa: E731
    return clamp(r), clamp(g), clamp(b), a


def dominant_colour(rgba: np.ndarray) -> str:
    """Return ``#rrggbb``: the mean of the most populated 4-bit-per-channel colour bin.

    ``rgba`` is ``(h, w, 4)`` uint8; pixels with alpha < 128 are ignored (all of
    them if none is opaque enough). More faithful than the plain mean, which turns
    a red-and-green image brown.
    """
    flat = rgba.reshape(-1, 4)
    opaque = flat[flat[:, 3] >= 128]
    pixels = (opaque if len(opaque) else flat)[:, :3].astype(np.int64)
    bins = (pixels[:, 0] >> 4) << 8 | (pixels[:, 1] >> 4) << 4 | (pixels[:, 2] >> 4)
    top = np.bincount(bins, minlength=4096).argmax()
    mean = pixels[bins == top].mean(axis=0)
    return "#{:02x}{:02x}{:02x}".format(*(round(float(c)) for c in mean))


def small_rgba(image: pyvips.Image) -> np.ndarray:
    """Return an ``(h, w, 4)`` uint8 array of ``image`` (8-bit sRGB) fitted in 100×100.

    ``image`` has 3 bands (opaque: alpha 255 is added) or 4; anything else raises
    ``ValueError``.
    """
    if image.bands not in (3, 4):
        raise ValueError(f"expected 3 or 4 bands (sRGB, sRGB + alpha), got {image.bands}")
    scale = min(1.0, MAX_SIDE / max(image.width, image.height))
    small = image.resize(scale) if scale < 1.0 else image
    if small.width > MAX_SIDE or small.height > MAX_SIDE:
        small = small.crop(0, 0, min(small.width, MAX_SIDE), min(small.height, MAX_SIDE))
    if small.format != "uchar":
        small = small.cast("uchar")
    pixels = np.ndarray(
        buffer=small.write_to_memory(),
        dtype=np.uint8,
        shape=(small.height, small.width, small.bands),
    )
    if small.bands == 3:  # opaque alpha added here, not as two more libvips operations
        pixels = np.dstack((pixels, np.full(pixels.shape[:2], 255, dtype=np.uint8)))
    return pixels


def placeholders(image: pyvips.Image) -> tuple[str, str]:
    """Return ``(thumbhash base64, dominant colour #rrggbb)`` for an 8-bit sRGB ``image``."""
    rgba = small_rgba(image)
    return base64.b64encode(thumbhash_bytes(rgba)).decode("ascii"), dominant_colour(rgba)
