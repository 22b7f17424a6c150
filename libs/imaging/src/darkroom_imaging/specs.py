"""Variant specifications: what one rendered output of a source image looks like.

A :class:`VariantSpec` is pure data (pydantic v2, frozen). :func:`spec_hash` turns
it into a stable key part, so an output key derived from (image id, spec hash) is
the same every time the same pixels would be produced. A :class:`Profile` is a named
list of specs, loaded from JSON by :mod:`darkroom_imaging.profiles`.

Geometry words follow libvips/sharp usage:

* ``fit="inside"``: scale down (never up) so the whole image fits in
  ``width``×``height``; the aspect ratio is kept, one side may be shorter.
* ``fit="cover"``: scale so the image covers ``width``×``height`` and crop the
  overflow at ``gravity``; output is exactly ``width``×``height`` when the source is
  large enough. A smaller source is never upscaled: it is cropped to the box's aspect
  ratio at source resolution instead.
* ``fit="fill"``: stretch to exactly ``width``×``height`` ignoring the aspect ratio,
  each axis clamped to the source size (never upscaled).
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Bumped whenever the renderer's pixel or byte output changes for an unchanged
#: spec (new resampling, encoder settings...), so :func:`spec_hash` changes too.
RENDERER_REVISION = 1

Fit = Literal["cover", "inside", "fill"]
Gravity = Literal["centre", "attention", "entropy"]
Format = Literal["jpeg", "webp", "avif", "png"]
Position = Literal[
    "north-west",
    "north",
    "north-east",
    "west",
    "centre",
    "east",
    "south-west",
    "south",
    "south-east",
]
HexColour = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]

MIME_TYPES: dict[str, str] = {
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "avif": "image/avif",
    "png": "image/png",
}
EXTENSIONS: dict[str, str] = {"jpeg": "jpg", "webp": "webp", "avif": "avif", "png": "png"}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FocalPoint(_Frozen):
    """A crop centre for ``fit="cover"`` in relative source coordinates.

    ``x`` and ``y`` are in 0..1 of the auto-oriented source (0,0 = top-left).
    """

    x: float = Field(ge=0.0, le=1.0)
    y: float = Field(ge=0.0, le=1.0)


class Watermark(_Frozen):
    """Text stamped on the output.

    ``text`` is a template formatted with the render context's fields
    (``{artist}``, ``{copyright}``); ``opacity`` 0..1; ``size`` is the text width
    relative to the output width (0.25 = a quarter of it); ``margin`` is relative to
    the output width too.
    """

    text: str = Field(min_length=1, max_length=200)
    opacity: float = Field(default=0.5, ge=0.0, le=1.0)
    position: Position = "south-east"
    size: float = Field(default=0.25, gt=0.0, le=1.0)
    margin: float = Field(default=0.02, ge=0.0, le=0.25)
    colour: HexColour = "#ffffff"


# --- recipe operations -------------------------------------------------------
# Geometry operations (rotate, flip, crop) act on the auto-oriented source before
# the fit; pixel operations act on the fitted image. Each group keeps recipe order.


class Rotate(_Frozen):
    """Rotate clockwise by ``angle`` degrees (90, 180 or 270); geometry operation."""

    op: Literal["rotate"] = "rotate"
    angle: Literal[90, 180, 270]


class Flip(_Frozen):
    """Mirror ``horizontal`` (left↔right) or ``vertical`` (top↔bottom); geometry operation."""

    op: Literal["flip"] = "flip"
    direction: Literal["horizontal", "vertical"]


class Crop(_Frozen):
    """Keep a rectangle given in 0..1 relative coordinates of the image at that point.

    Relative units because the engine decodes at a reduced size. Geometry operation.
    """

    op: Literal["crop"] = "crop"
    left: float = Field(ge=0.0, lt=1.0)
    top: float = Field(ge=0.0, lt=1.0)
    width: float = Field(gt=0.0, le=1.0)
    height: float = Field(gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _inside(self) -> Crop:
        if self.left + self.width > 1.0 + 1e-9 or self.top + self.height > 1.0 + 1e-9:
            raise ValueError(
                "crop rectangle must lie inside the image (left+width ≤ 1, top+height ≤ 1)"
            )
        return self


class Grayscale(_Frozen):
    """Convert to grey (output stays 3-band sRGB); pixel operation."""

    op: Literal["grayscale"] = "grayscale"


class Sepia(_Frozen):
    """Apply the classic sepia tone matrix; pixel operation."""

    op: Literal["sepia"] = "sepia"


class Blur(_Frozen):
    """Gaussian blur, ``sigma`` in output pixels; pixel operation."""

    op: Literal["blur"] = "blur"
    sigma: float = Field(gt=0.0, le=100.0)


class Sharpen(_Frozen):
    """Unsharp mask on lightness, ``sigma`` in output pixels; pixel operation."""

    op: Literal["sharpen"] = "sharpen"
    sigma: float = Field(default=1.0, gt=0.0, le=10.0)


class Negate(_Frozen):
    """Invert colour bands (alpha untouched); pixel operation."""

    op: Literal["negate"] = "negate"


class Normalize(_Frozen):
    """Stretch luminance so its 1st..99th percentiles span 0..255; pixel operation."""

    op: Literal["normalize"] = "normalize"


class Border(_Frozen):
    """Paint a frame ``width`` output pixels wide inside the image edge (size unchanged)."""

    op: Literal["border"] = "border"
    width: int = Field(ge=1, le=500)
    colour: HexColour = "#000000"


class TextOverlay(_Frozen):
    """Literal text drawn like a watermark (see :class:`Watermark`); pixel operation."""

    op: Literal["text"] = "text"
    text: str = Field(min_length=1, max_length=200)
    opacity: float = Field(default=1.0, ge=0.0, le=1.0)
    position: Position = "centre"
    size: float = Field(default=0.5, gt=0.0, le=1.0)
    margin: float = Field(default=0.02, ge=0.0, le=0.25)
    colour: HexColour = "#ffffff"


Operation = Annotated[
    Rotate
    | Flip
    | Crop
    | Grayscale
    | Sepia
    | Blur
    | Sharpen
    | Negate
    | Normalize
    | Border
    | TextOverlay,
    Field(discriminator="op"),
]
GEOMETRY_OPS = ("rotate", "flip", "crop")


class VariantSpec(_Frozen):
    """One output of a source image.

    Bounds ``width``/``height`` are in pixels of the output. ``quality`` is the
    encoder Q (1..100; ignored for PNG); ``effort`` is the WebP (0..6) or AVIF (0..9)
    CPU effort. JPEG output is baseline (not progressive) with 4:2:0 chroma
    subsampling and optimised Huffman tables. All metadata is stripped except an
    sRGB ICC profile; ``keep_copyright`` writes EXIF Artist/Copyright from the render
    context and nothing else.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    width: int = Field(ge=1, le=16384)
    height: int = Field(ge=1, le=16384)
    fit: Fit = "inside"
    gravity: Gravity | FocalPoint = "centre"
    format: Format = "jpeg"
    quality: int = Field(default=80, ge=1, le=100)
    effort: int | None = Field(default=None, ge=0, le=9)
    keep_copyright: bool = False
    watermark: Watermark | None = None
    recipe: tuple[Operation, ...] = ()

    @model_validator(mode="after")
    def _effort_range(self) -> VariantSpec:
        if self.effort is not None and self.format == "webp" and self.effort > 6:
            raise ValueError("webp effort must be 0..6")
        if self.effort is not None and self.format in ("jpeg", "png"):
            raise ValueError("effort applies to webp and avif only")
        return self

    @property
    def mime(self) -> str:
        """MIME type of the encoded output, e.g. ``image/jpeg``."""
        return MIME_TYPES[self.format]

    @property
    def extension(self) -> str:
        """File extension without the dot, e.g. ``jpg``."""
        return EXTENSIONS[self.format]


def spec_hash(spec: VariantSpec) -> str:
    """Return 16 hex digits identifying the output ``spec`` produces.

    The hash covers every field that changes pixels or bytes (the ``name`` does not)
    plus :data:`RENDERER_REVISION`, serialised as canonical JSON (sorted keys, no
    whitespace), then SHA-256. Stable across processes and Python versions.
    """
    payload = spec.model_dump(mode="json", exclude={"name"})
    payload["_renderer"] = RENDERER_REVISION
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class Profile(_Frozen):
    """A named set of variant specs; spec names are unique within a profile."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    description: str = ""
    specs: tuple[VariantSpec, ...] = Field(min_length=1)

    @field_validator("specs")
    @classmethod
    def _unique_names(cls, specs: tuple[VariantSpec, ...]) -> tuple[VariantSpec, ...]:
        names = [s.name for s in specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate variant names: {', '.join(dupes)}")
        return specs

    def max_bounds(self) -> tuple[int, int]:
        """Return ``(width, height)``: the largest width and height bound of any spec, px."""
        return max(s.width for s in self.specs), max(s.height for s in self.specs)

    def spec(self, name: str) -> VariantSpec:
        """Return the spec called ``name``; raises ``KeyError`` if there is none."""
        for s in self.specs:
            if s.name == name:
                return s
        raise KeyError(name)
