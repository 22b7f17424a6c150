"""The variants planner: an accepted raster image → one ``variant-requested`` per spec.

A RAW original is not planned (raw-provider develops it and its JPEG master
comes back as a ``validated`` event with ``derived_from``, which is planned).
The profile is, first to last: the one the ``validated`` event names (ingest
may fill it in), the gallery's ``profile`` setting, the service's default. An
unknown profile fails the job with ``unknown_profile`` through a failed
``variant-done`` for the pseudo-variant ``_plan``.
"""

from __future__ import annotations

from darkroom_common.errors import PoisonEvent
from darkroom_common.ports import GallerySettings
from darkroom_imaging.profiles import ProfileCatalog, ProfileError
from darkroom_imaging.specs import spec_hash
from darkroom_schemas import ValidatedV1, VariantDoneV1, VariantRequestedV1

PLAN_VARIANT = "_plan"
"""The pseudo-variant a planning failure is reported for."""

Plan = list[VariantRequestedV1] | VariantDoneV1
"""The requests of an image, or the failed ``variant-done`` of a job that cannot be planned."""


def plannable(event: ValidatedV1) -> bool:
    """Whether ``event`` is a raster source to render: accepted, and not a RAW original."""
    return event.accepted and (not event.is_raw or event.derived_from is not None)


def plan(
    event: ValidatedV1,
    catalog: ProfileCatalog,
    *,
    default_profile: str,
    gallery_profile: str | None = None,
) -> Plan:
    """Return the variant requests for ``event``, or a failed ``variant-done`` for a bad profile.

    The profile is ``event.profile``, else ``gallery_profile`` (the gallery's
    setting), else ``default_profile``, resolved in ``catalog``.

    Raises:
        PoisonEvent: the accepted event has no ``sha256`` (ingest always sets one).
    """
    ids = {
        "job_id": event.job_id,
        "gallery_id": event.gallery_id,
        "image_id": event.image_id,
        "correlation_id": event.correlation_id,
        "attempt": event.attempt,
    }
    try:
        profile = catalog.resolve(event.profile or gallery_profile or default_profile)
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


class Planner:
    """The planning handler: a ``validated`` event → its :data:`Plan` (``[]`` when not plannable).

    Args:
        catalog: the deployment's profiles.
        galleries: the gallery settings, read only when an event names no profile.
        default_profile: the profile when neither the event nor its gallery names one.
    """

    def __init__(
        self, catalog: ProfileCatalog, galleries: GallerySettings, default_profile: str
    ) -> None:
        self.catalog = catalog
        self.galleries = galleries
        self.default_profile = default_profile

    async def __call__(self, event: object) -> Plan:
        """Plan ``event``: an accepted raster ``ValidatedV1``; anything else plans nothing.

        Raises:
            GallerySettingsUnavailable: the event names no profile and the gallery
                settings were not read in time (retriable).
            PoisonEvent: see :func:`plan`.
        """
        if not isinstance(event, ValidatedV1) or not plannable(event):
            return []
        gallery_profile = None
        if event.profile is None:
            gallery_profile = (await self.galleries.get(event.gallery_id)).profile
        return plan(
            event,
            self.catalog,
            default_profile=self.default_profile,
            gallery_profile=gallery_profile,
        )
