"""What every RAW provider is: a validated RAW in, the validated event of its master out.

Two providers exist: ``local`` (rawpy/LibRaw in this process, :mod:`.develop`)
and ``imagen`` (the external HTTP provider, :mod:`.imagen`). A gallery picks one
with its ``processing_provider`` setting. A provider returns a *value*: an
accepted ``ValidatedV1`` for the master (``derived_from`` = the RAW's key), or a
rejected one with a reason code, so the catalog fails the job and the gallery
is left untouched. Only transient trouble (the store or the provider is down)
is raised, as a retriable error, for the stage runner to retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from darkroom_schemas import GallerySettingsV1, ValidatedV1


class RawProvider(Protocol):
    """A RAW developer. ``name`` is the ``processing_provider`` value that selects it."""

    name: str

    async def develop(self, event: ValidatedV1) -> ValidatedV1:
        """Develop the RAW original of ``event``; return the master's or a rejection.

        Raises:
            StorageUnavailable, ProviderUnavailable: transient; the event is retried.
        """
        ...

    async def aclose(self) -> None:
        """Release connections; the provider is unusable afterwards."""
        ...


def derived_fields(event: ValidatedV1) -> dict[str, Any]:
    """Return the fields a master's ``validated`` event copies from the RAW's."""
    return {
        "job_id": event.job_id,
        "gallery_id": event.gallery_id,
        "image_id": event.image_id,
        "correlation_id": event.correlation_id,
        "attempt": event.attempt,
        "filename": event.filename,
        "profile": event.profile,
        "metadata": event.metadata,
        "derived_from": event.object_key,
    }


def rejection(
    event: ValidatedV1, reason_code: str, message: str, *, provider_job_id: str | None = None
) -> ValidatedV1:
    """Return the rejected ``validated`` event that fails the job of ``event`` with ``reason_code``."""
    return ValidatedV1(
        **derived_fields(event),
        accepted=False,
        object_key=event.object_key,
        reason_code=reason_code,
        reason_message=message,
        provider_job_id=provider_job_id,
    )


def pick(providers: Mapping[str, RawProvider], gallery: GallerySettingsV1) -> RawProvider | None:
    """Return the provider the gallery's ``processing_provider`` names, or None when none is set up."""
    return providers.get(gallery.processing_provider)
