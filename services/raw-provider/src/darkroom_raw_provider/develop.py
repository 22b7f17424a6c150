"""The raw-provider handler: a validated RAW in, a validated JPEG master out.

:class:`DevelopHandler` picks the provider by the gallery's
``processing_provider`` (``local``: :class:`LocalProvider`, rawpy/LibRaw here;
``imagen``: the external provider of :mod:`darkroom_raw_provider.imagen`).

The master is stored under a deterministic key and re-enters the flow as a
second ``validated`` event whose ``derived_from`` names the RAW original, so the
variants planner renders it like any raster upload, while the job keeps the
RAW's own EXIF. A RAW that cannot be developed (no image data, garbage, black)
becomes a rejection with the engine's reason code.

A master is developed once per RAW bytes, provider and policy: before developing,
:class:`DevelopHandler` reads the master object's metadata (a HEAD, see
:func:`~darkroom_raw_provider.providers.reused_master`); when it was developed from
the same RAW (sha256) by the same provider with the same policy, the master's
``validated`` event is sent again without developing (a redelivered or re-sent
event, a retry), counted in ``darkroom_redelivery_reused_total{kind="master"}``.
Rejections are not remembered: a RAW that failed is developed again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path

from darkroom_common.errors import DarkroomError, ObjectNotFound
from darkroom_common.metrics import Metrics
from darkroom_common.objects import download, master_key, put_counted
from darkroom_common.ports import Clock, GallerySettings
from darkroom_common.storage import ObjectStore
from darkroom_imaging.outcomes import Failure
from darkroom_imaging.raw import copy_capture_metadata, develop, master_long_edge
from darkroom_raw_provider.providers import (
    RawProvider,
    derived_fields,
    master_metadata,
    pick,
    rejection,
    reused_master,
)
from darkroom_raw_provider.settings import RawProviderSettings
from darkroom_schemas import ProbeInfo, ValidatedV1

log = logging.getLogger(__name__)


def needed_long_edge(probe: ProbeInfo | None, box: tuple[int, int]) -> int:
    """Return the long edge (px) a master needs so the largest variant is not upscaled.

    The largest variant fits the image *inside* ``box``; for a 3:2 sensor and a
    1920×1080 box that is 1620×1080, so a 1728×1152 embedded preview suffices.
    Without a probe, the box's long edge. The engine's
    :func:`~darkroom_imaging.raw.master_long_edge` (which ``darkroom render`` uses too).
    """
    if probe is None:
        return max(box)
    return master_long_edge(probe.width, probe.height, probe.orientation, box)


def local_policy(event: ValidatedV1, settings: RawProviderSettings) -> str:
    """Return the ``local`` provider's development policy for ``event``.

    Everything besides the RAW's bytes that shapes the master: the policy
    (``embedded-preview`` or ``develop``), the long edge needed (px) and the JPEG quality.
    """
    edge = needed_long_edge(event.probe, settings.master_box)
    return f"{settings.policy};long-edge={edge};quality={settings.master_quality}"


def wants(event: ValidatedV1) -> bool:
    """Whether this stage develops ``event``: an accepted RAW original (not a master)."""
    return event.accepted and event.is_raw and event.derived_from is None


async def develop_raw(
    event: ValidatedV1, *, store: ObjectStore, settings: RawProviderSettings, metrics: Metrics
) -> ValidatedV1:
    """Develop the RAW of ``event`` and return the ``validated`` event of its master.

    The RAW is probed again first (the verdict ingest gave, with ``event.filename`` as the
    declared name); the master carries the RAW's capture EXIF
    (:func:`~darkroom_imaging.raw.copy_capture_metadata`: no GPS, no orientation) and
    its ``sha256`` is that of the stored bytes, EXIF included.

    Raises:
        StorageUnavailable: the object store failed (retriable).
    """
    base = derived_fields(event)
    with tempfile.TemporaryDirectory(prefix="darkroom-raw-", dir=settings.work_dir) as tmp:
        path = Path(tmp) / f"original.{event.probe.format if event.probe else 'raw'}"
        try:
            await download(store, event.object_key, path, metrics)
        except ObjectNotFound:
            return rejection(
                event,
                "missing_original",
                f"The RAW original {event.object_key!r} is no longer in the object store.",
            )
        result = await asyncio.to_thread(
            develop,
            path,
            policy=settings.policy,
            min_long_edge=needed_long_edge(event.probe, settings.master_box),
            max_seconds=settings.max_seconds,
            max_memory_bytes=settings.max_memory_bytes,
            quality=settings.master_quality,
            declared_name=event.filename,
        )
        if isinstance(result, Failure):
            if result.detail:  # the decoder's own words: for the log, never the event
                log.warning(
                    "development failed",
                    extra={
                        "job_id": event.job_id,
                        "reason": result.reason.value,
                        "detail": result.detail,
                    },
                )
            return rejection(event, result.reason.value, result.message)
        jpeg = await asyncio.to_thread(copy_capture_metadata, path, result.jpeg)
    key = master_key(event.gallery_id, event.image_id)
    master = ValidatedV1(
        **base,
        accepted=True,
        object_key=key,
        sha256=hashlib.sha256(jpeg).hexdigest(),
        is_raw=False,
        probe=ProbeInfo(
            format="jpeg",
            mime_type="image/jpeg",
            width=result.width,
            height=result.height,
            pixels=result.width * result.height,
            bit_depth=8,
            colour_space="srgb",
            orientation=1,
        ),
    )
    await put_counted(
        store,
        key,
        jpeg,
        metrics,
        content_type="image/jpeg",
        metadata={  # object metadata keys allow [a-z0-9-] only
            **{
                k.replace("_", "-"): str(v)
                for k, v in result.provenance.items()
                if isinstance(v, str | int | float)
            },
            **master_metadata(
                event, master, provider="local", policy=local_policy(event, settings)
            ),
        },
    )
    return master


class LocalProvider:
    """The ``local`` provider: :func:`develop_raw` in this process (rawpy/LibRaw).

    Args:
        store: where originals are read and masters written.
        settings: the development policy and bounds.
        metrics: where bytes read and written are counted.
    """

    name = "local"

    def __init__(self, store: ObjectStore, settings: RawProviderSettings, metrics: Metrics) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics

    def policy(self, event: ValidatedV1) -> str:
        """See :func:`local_policy`."""
        return local_policy(event, self.settings)

    async def develop(self, event: ValidatedV1) -> ValidatedV1:
        """See :func:`develop_raw`."""
        return await develop_raw(
            event, store=self.store, settings=self.settings, metrics=self.metrics
        )

    async def aclose(self) -> None:
        """Nothing to release."""


class DevelopHandler:
    """The stage's handler for ``validated``: develops accepted RAW originals with the gallery's provider.

    Args:
        providers: by ``processing_provider`` name (``local``, ``imagen``).
        galleries: the gallery settings.
        metrics: where develop times and reused masters are observed.
        clock: times each development.
        store: where masters are looked for before developing; ``None``: always develop.
    """

    def __init__(
        self,
        providers: Mapping[str, RawProvider],
        galleries: GallerySettings,
        metrics: Metrics,
        clock: Clock,
        store: ObjectStore | None = None,
    ) -> None:
        self.providers = providers
        self.galleries = galleries
        self.metrics = metrics
        self.clock = clock
        self.store = store

    async def reuse(self, event: ValidatedV1, provider: RawProvider) -> ValidatedV1 | None:
        """Return the ``validated`` of the master already developed from ``event``'s RAW, or ``None``.

        ``None`` too when the store cannot tell (unavailable, access denied): the
        development then meets the same store under the runtime's retries.
        """
        if self.store is None:
            return None
        key = master_key(event.gallery_id, event.image_id)
        try:
            info = await self.store.head(key)
        except ObjectNotFound:
            return None
        except DarkroomError as exc:
            log.warning("master reuse check failed; developing", extra={"error": str(exc)})
            return None
        return reused_master(event, info, provider=provider.name, policy=provider.policy(event))

    async def __call__(self, event: object) -> list[ValidatedV1]:
        """Return the master's ``validated`` (or the rejection) for a RAW original; ``[]`` otherwise.

        Raises:
            GallerySettingsUnavailable: the gallery settings were not read in time (retriable).
            StorageUnavailable, ProviderUnavailable: transient trouble of the provider (retriable).
        """
        if not isinstance(event, ValidatedV1) or not wants(event):
            return []
        gallery = await self.galleries.get(event.gallery_id)
        provider = pick(self.providers, gallery)
        if provider is None:
            return [
                rejection(
                    event,
                    "provider_not_configured",
                    f"Gallery {event.gallery_id!r} asks for the {gallery.processing_provider!r} "
                    "RAW provider, which this deployment has not set up.",
                )
            ]
        reused = await self.reuse(event, provider)
        if reused is not None:
            self.metrics.redelivery_reused.labels("raw-provider", "master").inc()
            log.info("master already developed from these bytes: sent again, not developed")
            return [reused]
        started = self.clock.monotonic()
        outcome = "error"
        try:
            master = await provider.develop(event)
            outcome = "accepted" if master.accepted else "rejected"
            return [master]
        finally:
            self.metrics.raw_develop_seconds.labels(provider.name, outcome).observe(
                self.clock.monotonic() - started
            )
