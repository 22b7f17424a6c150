"""Variant profiles: named sets of :class:`~darkroom_imaging.specs.VariantSpec` as data.

Built-in profiles are JSON files shipped in the package (``profiles/*.json``):

* ``default``: the gallery set (thumb, icon, medium, large, large_webp, large_avif,
  display with a ``© {artist}`` watermark).
* ``bench``: the fixed set ``make bench`` compares engines with.

A deployment can use its own profile by passing a path to a JSON file of the same
shape (``{"name": ..., "specs": [...]}``) to :func:`load_profile`.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from darkroom_imaging.specs import Profile

_PACKAGE = "darkroom_imaging"
_FOLDER = "profiles"


class ProfileError(ValueError):
    """A profile is unknown, unreadable or invalid; the message says which and why."""


def list_profiles() -> list[str]:
    """Return the names of the built-in profiles, sorted (e.g. ``["bench", "default"]``)."""
    folder = resources.files(_PACKAGE).joinpath(_FOLDER)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load_profile(name_or_path: str | Path) -> Profile:
    """Return a built-in profile by name, or a profile read from a JSON file path.

    A ``Path``, or a string containing ``/`` or ending in ``.json``, is read as a
    file; anything else is a built-in name. Raises :class:`ProfileError` for an
    unknown name, an unreadable file, invalid JSON or a spec that fails validation.
    """
    is_path = (
        isinstance(name_or_path, Path) or "/" in name_or_path or name_or_path.endswith(".json")
    )
    if is_path:
        path = Path(name_or_path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(f"cannot read profile file {path}: {exc.strerror}") from exc
        origin = str(path)
    else:
        name = str(name_or_path)
        if name not in list_profiles():
            raise ProfileError(f"unknown profile {name!r}; built-in: {', '.join(list_profiles())}")
        text = resources.files(_PACKAGE).joinpath(_FOLDER, f"{name}.json").read_text("utf-8")
        origin = f"built-in profile {name!r}"
    try:
        return Profile.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{origin} is not valid JSON: {exc}") from exc
    except ValidationError as exc:
        raise ProfileError(f"{origin} is invalid: {exc}") from exc
