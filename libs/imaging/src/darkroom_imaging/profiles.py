"""Variant profiles: named sets of :class:`~darkroom_imaging.specs.VariantSpec` as data.

Built-in profiles are JSON files shipped in the package (``profiles/*.json``):

* ``default``: the gallery set (thumb, icon, medium, large, large_webp, large_avif,
  display with a ``© {artist}`` watermark).
* ``bench``: the fixed set ``make bench`` compares engines with.

A deployment adds its own profiles as ``<name>.json`` files of the same shape
(``{"name": ..., "specs": [...]}``) in one folder; :class:`ProfileCatalog` resolves a
plain name against that folder first, then the built-in profiles. :func:`load_profile`
reads one profile by built-in name or file path.
"""

from __future__ import annotations

import json
import re
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


PROFILE_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
"""What a profile name may be: 1-63 of ``[a-z0-9_-]``, starting with a letter or digit."""
_PROFILE_NAME = re.compile(PROFILE_NAME)


class ProfileCatalog:
    """Every profile a deployment knows: the built-in ones and ``<profiles_dir>/<name>.json``.

    One catalog serves ingest (an upload's ``profile``), the variants planner and the
    catalog API (a gallery's ``profile`` setting), so they agree on which names exist.
    A file in ``profiles_dir`` overrides the built-in profile of the same name. Only
    plain names resolve: an upload can never point the planner at a path.

    Args:
        profiles_dir: a folder of extra profiles (``DARKROOM_PROFILES_DIR``), or ``None``.
    """

    def __init__(self, profiles_dir: Path | None = None) -> None:
        self.profiles_dir = profiles_dir
        self._cache: dict[str, Profile] = {}

    @staticmethod
    def is_name(name: str) -> bool:
        """Whether ``name`` is a well-formed profile name (:data:`PROFILE_NAME`)."""
        return bool(_PROFILE_NAME.match(name))

    def names(self) -> list[str]:
        """Return every profile name, sorted: built-in ones and the folder's ``*.json``."""
        found = set(list_profiles())
        if self.profiles_dir is not None and self.profiles_dir.is_dir():
            found |= {
                p.stem
                for p in self.profiles_dir.glob("*.json")
                if p.is_file() and self.is_name(p.stem)
            }
        return sorted(found)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def resolve(self, name: str) -> Profile:
        """Return profile ``name`` (read once, then cached).

        Raises:
            ProfileError: the name is malformed, names no profile, or its file is invalid.
        """
        if name in self._cache:
            return self._cache[name]
        if not self.is_name(name):
            raise ProfileError(f"profile name {name!r} is not a plain name ([a-z0-9_-])")
        path = self.profiles_dir / f"{name}.json" if self.profiles_dir is not None else None
        profile = load_profile(path) if path is not None and path.is_file() else load_profile(name)
        self._cache[name] = profile
        return profile
