"""Text stamped onto a rendered image with libvips ``text`` (Pango).

Used for :class:`~darkroom_imaging.specs.Watermark` and the recipe's
:class:`~darkroom_imaging.specs.TextOverlay`.
"""

from __future__ import annotations

import string

import pyvips

FONT = "sans bold"


def hex_to_rgb(colour: str) -> list[int]:
    """Return ``[r, g, b]`` (0..255) for ``#rrggbb``."""
    return [int(colour[i : i + 2], 16) for i in (1, 3, 5)]


def format_template(template: str, fields: dict[str, str]) -> str:
    """Fill ``{name}`` placeholders from ``fields``; unknown names become empty strings."""
    names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    return template.format(**{n: fields.get(n, "") for n in names}).strip()


def stamp_text(
    image: pyvips.Image,
    text: str,
    *,
    opacity: float,
    position: str,
    size: float,
    margin: float,
    colour: str,
) -> pyvips.Image:
    """Return ``image`` (8-bit sRGB, 3 or 4 bands) with ``text`` composited onto it.

    ``size`` is the text's target width relative to the image width, ``margin`` the
    gap to the edges relative to the image width, ``position`` a compass point
    (``south-east``...) or ``centre``, ``opacity`` 0..1. Image size is unchanged.
    Empty ``text`` returns ``image`` as is. Raises ``pyvips.Error`` if Pango fails.
    """
    if not text or opacity <= 0.0:
        return image
    target_w = max(8, round(image.width * size))
    target_h = max(8, min(image.height, round(target_w / 2)))
    # Pango reads markup, so the text is escaped; width+height autofit the DPI.
    mask = pyvips.Image.text(_escape(text), font=FONT, width=target_w, height=target_h, wrap="none")
    if mask.width > image.width or mask.height > image.height:
        mask = mask.crop(0, 0, min(mask.width, image.width), min(mask.height, image.height))
    gap = round(image.width * margin)
    x, y = _place(position, image.width, image.height, mask.width, mask.height, gap)
    # A soft dark halo keeps light text legible on bright areas.
    halo = mask.gaussblur(max(1.0, mask.height / 40)).linear(opacity * 0.6, 0).cast("uchar")
    alpha = mask.linear(opacity, 0).cast("uchar")
    fg = (pyvips.Image.black(mask.width, mask.height, bands=3) + hex_to_rgb(colour)).cast("uchar")
    shadow = pyvips.Image.black(mask.width, mask.height, bands=3).cast("uchar")
    layer_shadow = shadow.bandjoin(halo).copy(interpretation="srgb")
    layer_text = fg.bandjoin(alpha).copy(interpretation="srgb")
    out = image.composite([layer_shadow, layer_text], ["over", "over"], x=[x, x], y=[y, y])
    out = out.cast("uchar")
    if image.bands == 3 and out.bands == 4:
        out = out.extract_band(0, n=3)
    return out.copy(interpretation="srgb")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _place(position: str, w: int, h: int, tw: int, th: int, gap: int) -> tuple[int, int]:
    horiz = "west" if "west" in position else "east" if "east" in position else "centre"
    vert = "north" if "north" in position else "south" if "south" in position else "centre"
    x = {"west": gap, "east": w - tw - gap, "centre": (w - tw) // 2}[horiz]
    y = {"north": gap, "south": h - th - gap, "centre": (h - th) // 2}[vert]
    return max(0, min(x, w - tw)), max(0, min(y, h - th))
