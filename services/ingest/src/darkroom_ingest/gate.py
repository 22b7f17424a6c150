"""What ingest does with each event of a gallery: validate, hold, release, forget.

Every event reaching :class:`IngestHandler` comes from the by-gallery
repartition, so one worker sees all of a gallery's uploads, deletes and
terminal jobs, in order, and owns its state:

* **manual mode** (gallery setting ``processing_mode="manual"``): an upload is
  validated as usual; a rejection is sent at once (the job fails with its
  reason), an acceptance is *held* — its ``validated`` event is kept in the
  ``held`` table, keyed by image_id — until an ``uploaded`` event with
  ``source="start"`` (from the catalog API) releases it. A start for an image
  with no held verdict (already released, or never held) validates the
  original again, so a start is never lost. Retries (``source="retry"``) are
  not held: someone already asked for them.
* **max_concurrent_jobs**: the image ids released and not yet ``cataloged``
  are the gallery's ``active`` list; a verdict that would exceed the bound
  waits in the gallery's ``queued`` list (FIFO) and is released when a
  ``cataloged`` event (complete or failed) or a delete frees a slot. Ids, not
  counters, so a redelivered event never counts twice. Jobs released while the
  gallery had no bound are not counted when a bound is set later.
* **profile**: the gallery's profile fills ``ValidatedV1.profile`` when the
  upload names none.
* **re-sent uploads**: an ``uploaded`` event already validated (same event, or
  same job attempt) gets its stored verdict, the same ``validated`` event, without
  the original being read again (:mod:`darkroom_ingest.verdicts`); what follows —
  hold, queue, release — is as for a fresh verdict, unless the job attempt already
  ended (its ``cataloged`` came): then it is only sent again, and takes no slot.
* **image-deleted**: the image's content hash is forgotten (the same bytes can
  be uploaded again) and the gallery's count decremented, its held/queued/active
  entries and stored verdict dropped, and every object under
  ``originals/<gallery>/<image>/`` deleted. Idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from darkroom_common.errors import PoisonEvent
from darkroom_common.metrics import Metrics
from darkroom_common.objects import delete_image_objects
from darkroom_common.ports import GallerySettings
from darkroom_common.storage import ObjectStore
from darkroom_ingest.settings import IngestSettings
from darkroom_ingest.validate import GalleryIndex, validate_upload
from darkroom_ingest.verdicts import VerdictStore
from darkroom_runtime import Emit
from darkroom_schemas import (
    CatalogedV1,
    GallerySettingsV1,
    ImageDeletedV1,
    UploadedV1,
    ValidatedV1,
)

log = logging.getLogger(__name__)

NOT_HELD_SOURCES = frozenset({"start", "retry"})
"""Upload sources that manual mode never holds."""


class StateTable(Protocol):
    """One of the stage's tables as the gate uses it: a :class:`darkroom_runtime.Table`
    in the worker, a plain ``dict`` in tests.

    Values are JSON-ready and replaced, never mutated in place: the runtime records
    assignments in the changelog and hands out fresh copies on every read.
    """

    def get(self, key: Any, default: Any = None) -> Any:
        """Return the value under ``key``, or ``default``."""
        ...

    def __setitem__(self, key: Any, value: Any) -> None: ...

    def __delitem__(self, key: Any) -> None: ...

    def items(self) -> Iterable[tuple[Any, Any]]:
        """Iterate over ``(key, value)`` pairs (in the worker: of the partitions it holds)."""
        ...


class GalleryIndexWithDelete(GalleryIndex, Protocol):
    """A :class:`GalleryIndex` that can also forget an image."""

    def remove(self, gallery_id: str, image_id: str) -> bool:
        """Forget ``image_id``'s bytes and decrement the count; return whether it was known."""
        ...


class TableGalleryIndex:
    """:class:`GalleryIndexWithDelete` on three of the stage's tables.

    Args:
        content: ``"<gallery_id>/<sha256>"`` → image_id (``ingest-content``).
        counts: gallery_id → accepted images (``ingest-gallery-counts``).
        by_image: image_id → its ``content`` key, to forget it on delete
            (``ingest-image-content``); ``None`` in deployments without it.
    """

    def __init__(
        self, content: StateTable, counts: StateTable, by_image: StateTable | None = None
    ) -> None:
        self.content = content
        self.counts = counts
        self.by_image = by_image

    def image_for(self, gallery_id: str, sha256: str) -> str | None:
        """Return the image holding these bytes in the gallery, if any."""
        value = self.content.get(f"{gallery_id}/{sha256}")
        return str(value) if value is not None else None

    def count(self, gallery_id: str) -> int:
        """Return the gallery's accepted image count."""
        return int(self.counts.get(gallery_id) or 0)

    def add(self, gallery_id: str, sha256: str, image_id: str) -> None:
        """Record the bytes (idempotent: a redelivered upload does not count twice)."""
        key = f"{gallery_id}/{sha256}"
        if self.content.get(key) is None:
            self.content[key] = image_id
            self.counts[gallery_id] = self.count(gallery_id) + 1
            if self.by_image is not None:
                self.by_image[image_id] = key

    def remove(self, gallery_id: str, image_id: str) -> bool:
        """Forget ``image_id``'s bytes and decrement the gallery's count (idempotent).

        Images recorded before the ``by_image`` table existed are found by a scan
        of this worker's ``content`` rows of the gallery.
        """
        key = self.by_image.get(image_id) if self.by_image is not None else None
        if key is None:
            prefix = f"{gallery_id}/"
            key = next(
                (k for k, v in self.content.items() if str(k).startswith(prefix) and v == image_id),
                None,
            )
        if key is None or self.content.get(key) != image_id:
            return False
        del self.content[key]
        self.counts[gallery_id] = max(self.count(gallery_id) - 1, 0)
        if self.by_image is not None and self.by_image.get(image_id) is not None:
            del self.by_image[image_id]
        return True


@dataclass(frozen=True, slots=True)
class GateState:
    """The handler's job tables.

    Attributes:
        held: image_id → held ``validated`` event (JSON dict), manual mode (``ingest-held``).
        queued: gallery_id → list of ``validated`` events (JSON dicts) waiting for a slot
            (``ingest-queued``).
        active: gallery_id → list of image ids released and not yet cataloged
            (``ingest-active``).
        verdicts: image_id → the last upload validated and its verdict
            (``ingest-verdicts``, see :class:`~darkroom_ingest.verdicts.VerdictStore`);
            ``None``: every upload is validated.
    """

    held: StateTable
    queued: StateTable
    active: StateTable
    verdicts: StateTable | None = None


class IngestHandler:
    """The ingest stage's handler for every event of the by-gallery topic.

    Pure over its arguments: the tables and ports are passed in, so a test hands in
    a filesystem store, dicts and a fake gallery-settings source.

    Args:
        store: where originals are.
        index: content hashes and image counts per gallery.
        state: held, queued and active jobs.
        galleries: the gallery settings (the ``gallery-settings`` topic in a worker).
        settings: limits and policy.
        metrics: where the bytes read from the store are counted.
    """

    def __init__(
        self,
        store: ObjectStore,
        index: GalleryIndexWithDelete,
        state: GateState,
        galleries: GallerySettings,
        settings: IngestSettings,
        metrics: Metrics,
    ) -> None:
        self.store = store
        self.index = index
        self.state = state
        self.galleries = galleries
        self.settings = settings
        self.metrics = metrics
        self.verdicts = VerdictStore(state.verdicts)

    async def __call__(self, event: Any) -> list[Emit]:
        """Handle one event; return the ``validated`` events to send.

        Raises:
            PoisonEvent: not an UploadedV1, ImageDeletedV1 or CatalogedV1
                (``unexpected_event``; dead-lettered).
            GallerySettingsUnavailable: the gallery settings were not read in time (retried).
            StorageUnavailable: the object store failed (retried).
        """
        if not isinstance(event, UploadedV1 | ImageDeletedV1 | CatalogedV1):
            raise PoisonEvent(
                f"ingest cannot handle {type(event).__name__} events",
                reason_code="unexpected_event",
            )
        gallery = await self.galleries.get(event.gallery_id)
        if isinstance(event, UploadedV1):
            emits = await self.on_upload(event, gallery)
        elif isinstance(event, ImageDeletedV1):
            emits = await self.on_delete(event)
        else:
            self._drop(self.state.active, event.gallery_id, event.image_id)
            self.verdicts.cataloged(event)
            emits = []
        return emits + self.drain(gallery)

    async def on_upload(self, upload: UploadedV1, gallery: GallerySettingsV1) -> list[Emit]:
        """Validate (or take the held verdict of a start, or the stored verdict of a
        re-sent upload); hold, queue or release it."""
        if upload.source == "start" and (held := self.state.held.get(upload.image_id)):
            del self.state.held[upload.image_id]
            return self.release(ValidatedV1.model_validate(held), gallery)
        verdict = self.verdicts.lookup(upload)
        if verdict is not None:
            self.metrics.redelivery_reused.labels("ingest", "verdict").inc()
            log.info("already validated: the stored verdict is sent again")
            if self.verdicts.was_cataloged(upload):
                # Its job ended: sent again as it was, never held, queued or counted active.
                return [Emit("validated", self.fill(verdict, gallery))]
        else:
            verdict = await validate_upload(
                upload,
                store=self.store,
                index=self.index,
                settings=self.settings,
                metrics=self.metrics,
            )
            self.verdicts.remember(upload, verdict)
        if not verdict.accepted:
            return [Emit("validated", self.fill(verdict, gallery))]
        if gallery.processing_mode == "manual" and upload.source not in NOT_HELD_SOURCES:
            self.state.held[upload.image_id] = verdict.model_dump(mode="json")
            log.info("held until started (manual mode)")
            return []
        return self.release(verdict, gallery)

    def release(self, verdict: ValidatedV1, gallery: GallerySettingsV1) -> list[Emit]:
        """Send ``verdict`` now, or queue it when the gallery is at ``max_concurrent_jobs``."""
        limit = gallery.max_concurrent_jobs
        if limit is None:
            return [Emit("validated", self.fill(verdict, gallery))]
        active = list(self.state.active.get(verdict.gallery_id) or [])
        if verdict.image_id in active or len(active) < limit:
            if verdict.image_id not in active:
                self.state.active[verdict.gallery_id] = [*active, verdict.image_id]
            return [Emit("validated", self.fill(verdict, gallery))]
        queued = list(self.state.queued.get(verdict.gallery_id) or [])
        queued = [q for q in queued if q.get("image_id") != verdict.image_id]
        self.state.queued[verdict.gallery_id] = [*queued, verdict.model_dump(mode="json")]
        log.info("queued: the gallery is at its concurrency bound", extra={"limit": limit})
        return []

    def drain(self, gallery: GallerySettingsV1) -> list[Emit]:
        """Release queued verdicts of the gallery while it has free slots."""
        queued = list(self.state.queued.get(gallery.gallery_id) or [])
        if not queued:
            return []
        limit = gallery.max_concurrent_jobs
        active = list(self.state.active.get(gallery.gallery_id) or [])
        emits = []
        while queued and (limit is None or len(active) < limit):
            verdict = ValidatedV1.model_validate(queued.pop(0))
            if limit is not None:
                active.append(verdict.image_id)
            emits.append(Emit("validated", self.fill(verdict, gallery)))
        self.state.queued[gallery.gallery_id] = queued
        self.state.active[gallery.gallery_id] = active
        return emits

    async def on_delete(self, event: ImageDeletedV1) -> list[Emit]:
        """Forget the image and delete its originals (idempotent)."""
        known = self.index.remove(event.gallery_id, event.image_id)
        if self.state.held.get(event.image_id) is not None:
            del self.state.held[event.image_id]
        queued = list(self.state.queued.get(event.gallery_id) or [])
        if any(q.get("image_id") == event.image_id for q in queued):
            self.state.queued[event.gallery_id] = [
                q for q in queued if q.get("image_id") != event.image_id
            ]
        self._drop(self.state.active, event.gallery_id, event.image_id)
        self.verdicts.forget(event.image_id)
        removed = await delete_image_objects(
            self.store, "originals", event.gallery_id, event.image_id
        )
        log.info("image deleted", extra={"originals": removed, "was_indexed": known})
        return []

    @staticmethod
    def _drop(table: StateTable, gallery_id: str, image_id: str) -> None:
        ids = list(table.get(gallery_id) or [])
        if image_id in ids:
            table[gallery_id] = [i for i in ids if i != image_id]

    @staticmethod
    def fill(verdict: ValidatedV1, gallery: GallerySettingsV1) -> ValidatedV1:
        """Return ``verdict`` with the gallery's profile when the upload named none."""
        if verdict.profile is None and gallery.profile is not None:
            return verdict.model_copy(update={"profile": gallery.profile})
        return verdict
