"""What every RAW provider is: a validated RAW in, the validated event of its master out.

Two providers exist: ``local`` (rawpy/LibRaw in this process, :mod:`.develop`)
and ``imagen`` (the external HTTP provider, :mod:`.imagen`). A gallery picks one
with its ``processing_provider`` setting. A provider returns a *value*: an
accepted ``ValidatedV1`` for the master (``derived_from`` = the RAW's key), or a
rejected one with a reason code, so the catalog fails the job and the gallery
is left untouched. Only transient trouble (the store or the provider is down)
is raised, as a retriable error, for the stage runner to retry.

A provider writes its master with :func:`master_metadata`: the RAW's sha256, the
provider and its development policy (:meth:`RawProvider.policy`), and what the
master's ``validated`` event needs (sha256, size, orientation). So a re-sent
``validated`` event of the same RAW is answered from the master already stored
(:func:`reused_master`), without a second development.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping
from typing import Any, Protocol

from darkroom_common.storage import ObjectInfo
from darkroom_schemas import GallerySettingsV1, ProbeInfo, ValidatedV1


class RawProvider(Protocol):
    """A RAW developer. ``name`` is the ``processing_provider`` value that selects it."""

    name: str

    def policy(self, event: ValidatedV1) -> str:
        """Return the development policy ``event``'s RAW would be developed with.

        Two masters of the same RAW bytes with the same provider and policy are
        interchangeable. Printable ASCII (it is object metadata).
        """
        ...

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


MASTER_FIELDS = frozenset(
    {"source-sha256", "provider", "development-policy", "master-sha256", "width", "height"}
)
"""Object metadata a master needs to be reused (see :func:`reused_master`)."""

_PRINTABLE = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")


def metadata_value(text: str, limit: int = 256) -> str:
    """Return ``text`` as an object-metadata value: printable ASCII without edge spaces,
    at most ``limit`` characters; anything else is replaced by ``sha256:<hex>`` of it."""
    if text and text == text.strip() and len(text) <= limit and set(text) <= _PRINTABLE:
        return text
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def master_metadata(
    event: ValidatedV1, master: ValidatedV1, *, provider: str, policy: str
) -> dict[str, str]:
    """Return the object metadata of the master ``master`` developed from ``event``'s RAW.

    Keys are :data:`MASTER_FIELDS` plus ``orientation`` (and ``provider-job-id`` when
    an external provider developed it); a field ``master`` lacks is left out, so the
    object is never reused.
    """
    probe = master.probe
    meta = {
        "source-sha256": event.sha256 or "",
        "provider": provider,
        "development-policy": metadata_value(policy),
        "master-sha256": master.sha256 or "",
        "width": str(probe.width) if probe else "",
        "height": str(probe.height) if probe else "",
        "orientation": str(probe.orientation) if probe else "",
    }
    if master.provider_job_id:
        meta["provider-job-id"] = metadata_value(master.provider_job_id)
    return {k: v for k, v in meta.items() if v}


def reused_master(
    event: ValidatedV1, info: ObjectInfo, *, provider: str, policy: str
) -> ValidatedV1 | None:
    """Return the master's ``validated`` event from the stored master ``info``, or ``None``.

    ``None`` unless the object's metadata (:func:`master_metadata`) names ``event``'s
    RAW sha256, ``provider`` and ``policy``. The event is the one the provider sent
    when it developed the master (a new ``event_id`` aside).
    """
    meta = info.metadata
    if not event.sha256 or not meta.keys() >= MASTER_FIELDS:
        return None
    if (meta["source-sha256"], meta["provider"], meta["development-policy"]) != (
        event.sha256,
        provider,
        metadata_value(policy),
    ):
        return None
    try:
        width, height = int(meta["width"]), int(meta["height"])
        orientation = int(meta.get("orientation", "1"))
        return ValidatedV1(
            **derived_fields(event),
            accepted=True,
            object_key=info.key,
            sha256=meta["master-sha256"],
            is_raw=False,
            provider_job_id=meta.get("provider-job-id"),
            probe=ProbeInfo(
                format="jpeg",
                mime_type="image/jpeg",
                width=width,
                height=height,
                pixels=width * height,
                bit_depth=8,
                colour_space="srgb",
                orientation=orientation if 1 <= orientation <= 8 else 1,
            ),
        )
    except ValueError:  # metadata another writer left: develop again
        return None
