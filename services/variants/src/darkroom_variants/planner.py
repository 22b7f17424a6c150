"""The variants planner: an accepted raster image → one ``variant-requested`` per spec.

A RAW original is not planned (raw-provider develops it and its JPEG master
comes back as a ``validated`` event with ``derived_from``, which is planned).
The profile is, first to last: the one the ``validated`` event names (ingest
may fill it in), the gallery's ``profile`` setting, the service's default. An
unknown profile fails the job with ``unknown_profile`` through a failed
``variant-done`` for the pseudo-variant ``_plan``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from darkroom_common.errors import PoisonEvent
from darkroom_imaging.profiles import ProfileError, load_profile
from darkroom_imaging.specs import Profile, spec_hash
from darkroom_schemas import ValidatedV1, VariantDoneV1, VariantRequestedV1

_PROFILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
PLAN_VARIANT = "_plan"


def plannable(event: ValidatedV1) -> bool:
    """Whether ``event`` is a raster source to render: accepted, and not a RAW original."""
    return event.accepted and (not event.is_raw or event.derived_from is not None)


@lru_cache(maxsize=64)
def resolve_profile(name: str, profiles_dir: Path | None) -> Profile:
    """Return profile ``name``: ``<profiles_dir>/<name>.json`` if present, else a built-in one.

    Only plain names are accepted (an upload must not point the planner at a path).

    Raises:
        ProfileError: the name is malformed or names no profile.
    """
    if not _PROFILE_NAME.match(name):
        raise ProfileError(f"profile name {name!r} is not a plain name ([a-z0-9_-])")
    if profiles_dir is not None and (profiles_dir / f"{name}.json").is_file():
        return load_profile(profiles_dir / f"{name}.json")
    return load_profile(name)


def plan(
    event: ValidatedV1,
    *,
    default_profile: str,
    profiles_dir: Path | None = None,
    gallery_profile: str | None = None,
) -> list[VariantRequestedV1] | VariantDoneV1:
    """Return the variant requests for ``event``, or a failed ``variant-done`` for a bad profile.

    The profile is ``event.profile``, else ``gallery_profile`` (the gallery's
    setting), else ``default_profile``.
    """
    ids = {
        "job_id": event.job_id,
        "gallery_id": event.gallery_id,
        "image_id": event.image_id,
        "correlation_id": event.correlation_id,
        "attempt": event.attempt,
    }
    name = event.profile or gallery_profile or default_profile
    try:
        profile = resolve_profile(name, profiles_dir)
    except ProfileError as exc:
        return VariantDoneV1(
            **ids,
            variant=PLAN_VARIANT,
            spec_hash="0" * 16,
            status="failed",
            reason_code="unknown_profile",
            reason_message=str(exc),
        )
    if event.sha256 is None:
        raise PoisonEvent(f"accepted image {event.image_id} has no sha256; ingest always sets one")
    meta = event.metadata
    return [
        VariantRequestedV1(
            **ids,
            variant=spec.name,
            spec_hash=spec_hash(spec),
            spec_json=spec.model_dump_json(),
            profile=profile.name,
            variant_count=len(profile.specs),
            source_key=event.object_key,
            source_sha256=event.sha256,
            artist=meta.artist if meta else None,
            copyright=meta.copyright if meta else None,
        )
        for spec in profile.specs
    ]
