"""The press profile assumed for CMYK images that carry no ICC profile.

An untagged CMYK JPEG (Adobe APP14, inverted CMYK; libjpeg and libvips undo the
inversion, so the bands arrive as ordinary 0 = no ink values) has to be read through
*some* characterisation. The de-facto default for untagged CMYK in North American
workflows (Photoshop's "U.S. Web Coated (SWOP) v2", Ghostscript's default) is SWOP.

:func:`untagged_profile` returns the first of:

1. ``$DARKROOM_CMYK_PROFILE`` (a path to an ICC profile), when set and readable;
2. Ghostscript's ``default_cmyk.icc`` ("Artifex CMYK SWOP Profile"), shipped by the
   Debian package ``libgs-common`` at :data:`GHOSTSCRIPT_CMYK`;
3. ``"cmyk"``, libvips' built-in CMYK profile (a generic press profile).

Measured on the corpus (``formats/cmyk_no_icc.jpg`` against the same pixels converted
through their embedded U.S. Web Coated (SWOP) v2 profile, ``formats/cmyk_swop_icc.jpg``;
relative colorimetric intent, no black point compensation; mean CIEDE2000):
Artifex SWOP 0.0, libvips built-in 4.3 (perceptual 5.7). The built-in profile is what
made untagged CMYK look flatter. The Artifex profile is AGPL-licensed data, so it is
used from the system, not copied into this package; without ``libgs-common`` the
result is the libvips fallback (ΔE2000 ≈ 4.3, above the issue's 3).
"""

from __future__ import annotations

import os
from pathlib import Path

GHOSTSCRIPT_CMYK = Path("/usr/share/color/icc/ghostscript/default_cmyk.icc")
ENV_VAR = "DARKROOM_CMYK_PROFILE"
INTENT = "relative"
"""Rendering intent for untagged CMYK → sRGB (what the reference SWOP conversion uses)."""


def untagged_profile() -> str:
    """Return the input profile for untagged CMYK: a file path, or libvips' ``"cmyk"``.

    Never raises; an unreadable or missing file falls through to the next candidate.
    """
    for candidate in (os.environ.get(ENV_VAR, ""), str(GHOSTSCRIPT_CMYK)):
        if candidate and _is_icc(Path(candidate)):
            return candidate
    return "cmyk"


def _is_icc(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(40)
    except OSError:
        return False
    return len(head) == 40 and head[36:40] == b"acsp" and head[16:20] == b"CMYK"
