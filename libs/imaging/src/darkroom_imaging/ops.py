"""Recipe operations applied by the renderer (see :mod:`darkroom_imaging.specs`).

Geometry operations (:func:`apply_geometry`: rotate, flip, crop) run on the
auto-oriented in-memory intermediate before the fit; pixel operations
(:func:`apply_pixel_ops`) run on the fitted image. Images here are 8-bit sRGB with
3 bands, or 4 with alpha; every function returns the same layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyvips

from darkroom_imaging.specs import (
    GEOMETRY_OPS,
    Blur,
    Border,
    Crop,
    Flip,
    Grayscale,
    Negate,
    Normalize,
    Operation,
    Rotate,
    Sepia,
    Sharpen,
    TextOverlay,
)
from darkroom_imaging.watermark import hex_to_rgb, stamp_text

_SEPIA = [[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]]


def split_recipe(recipe: Sequence[Operation]) -> tuple[list[Operation], list[Operation]]:
    """Return ``(geometry ops, pixel ops)``, each in recipe order."""
    geometry = [op for op in recipe if op.op in GEOMETRY_OPS]
    pixel = [op for op in recipe if op.op not in GEOMETRY_OPS]
    return geometry, pixel


def geometry_size(width: float, height: float, ops: Sequence[Operation]) -> tuple[float, float]:
    """Return the ``(width, height)`` a ``width``×``height`` image has after ``ops``.

    Used to size the decode before any pixel exists; units are whatever the caller's are.
    """
    for op in ops:
        if isinstance(op, Rotate) and op.angle in (90, 270):
            width, height = height, width
        elif isinstance(op, Crop):
            width, height = width * op.width, height * op.height
    return width, height


def apply_geometry(image: pyvips.Image, ops: Sequence[Operation]) -> pyvips.Image:
    """Apply rotate/flip/crop ``ops`` in order; crop rectangles are relative (0..1)."""
    for op in ops:
        if isinstance(op, Rotate):
            image = image.rot(f"d{op.angle}")
        elif isinstance(op, Flip):
            image = image.flip(op.direction)
        elif isinstance(op, Crop):
            left = min(image.width - 1, round(op.left * image.width))
            top = min(image.height - 1, round(op.top * image.height))
            width = max(1, min(image.width - left, round(op.width * image.width)))
            height = max(1, min(image.height - top, round(op.height * image.height)))
            image = image.crop(left, top, width, height)
    return image


def apply_pixel_ops(image: pyvips.Image, ops: Sequence[Operation]) -> pyvips.Image:
    """Apply pixel ``ops`` in order and return an 8-bit sRGB image of the same size."""
    for op in ops:
        image = _pixel_op(image, op)
    return image


def _split_alpha(image: pyvips.Image) -> tuple[pyvips.Image, pyvips.Image | None]:
    if image.bands == 4:
        return image.extract_band(0, n=3), image.extract_band(3)
    return image, None


def _join(rgb: pyvips.Image, alpha: pyvips.Image | None) -> pyvips.Image:
    rgb = rgb.cast("uchar")
    out = rgb if alpha is None else rgb.bandjoin(alpha)
    return out.copy(interpretation="srgb")


def _pixel_op(image: pyvips.Image, op: Operation) -> pyvips.Image:
    rgb, alpha = _split_alpha(image)
    if isinstance(op, Grayscale):
        grey = rgb.colourspace("b-w")
        return _join(grey.bandjoin([grey, grey]), alpha)
    if isinstance(op, Sepia):
        return _join(rgb.recomb(_SEPIA), alpha)
    if isinstance(op, Blur):
        return _join(rgb.gaussblur(op.sigma), alpha)
    if isinstance(op, Sharpen):
        return _join(rgb.sharpen(sigma=op.sigma).colourspace("srgb"), alpha)
    if isinstance(op, Negate):
        return _join(rgb.invert(), alpha)
    if isinstance(op, Normalize):
        luma = rgb.colourspace("b-w")
        low, high = luma.percent(1), luma.percent(99)
        if high <= low:
            return image
        scale = 255.0 / (high - low)
        return _join(rgb.linear(scale, -low * scale), alpha)
    if isinstance(op, Border):
        width = min(op.width, (image.width - 1) // 2, (image.height - 1) // 2)
        if width < 1:
            return image
        background = hex_to_rgb(op.colour) + ([255] if image.bands == 4 else [])
        inner = image.crop(width, width, image.width - 2 * width, image.height - 2 * width)
        return inner.embed(
            width, width, image.width, image.height, extend="background", background=background
        ).copy(interpretation="srgb")
    if isinstance(op, TextOverlay):
        return stamp_text(
            image,
            op.text,
            opacity=op.opacity,
            position=op.position,
            size=op.size,
            margin=op.margin,
            colour=op.colour,
        )
    raise ValueError(f"not a pixel operation: {op.op}")
