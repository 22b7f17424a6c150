"""Gallery state: what a gallery shows, built from ``cataloged`` events of complete jobs.

The ``galleries`` table holds one :class:`GalleryState` (as :meth:`GalleryState.to_json`)
per ``gallery_id``. Only complete jobs change it, by upsert on ``image_id``: a
failed job leaves what the gallery showed before untouched, and a replayed or
re-sent cataloged event never adds an image twice. An image already shown from
a job that completed later than the incoming one is kept (an old job's late
event does not roll the image back).

A failed job of an image the gallery does not show is kept in ``failed`` (with
its reason) so the gallery page can show it and offer a retry; the image's
later completion removes it from there. ``image-deleted`` removes the image
from both and remembers its id in ``deleted``, so a cataloged event still in
flight cannot bring it back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from darkroom_schemas import CatalogedV1, ImageDeletedV1, ImageMetadata


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GalleryVariant(_State):
    """One rendered variant a gallery can show: object ``key``, size in px, ``bytes``."""

    key: str
    width: int
    height: int
    format: str
    bytes: int


class GalleryImage(_State):
    """One image of a gallery, as its last complete job left it. Times UTC."""

    filename: str | None = None
    job_id: str
    variants: dict[str, GalleryVariant] = Field(default_factory=dict)
    metadata: ImageMetadata | None = None
    thumbhash: str | None = None
    dominant_colour: str | None = None
    completed_at: datetime


class FailedJob(_State):
    """The last failed job of an image the gallery does not show. Times UTC."""

    filename: str | None = None
    job_id: str
    attempts: int = 1
    reason_code: str | None = None
    reason_message: str | None = None
    completed_at: datetime


class GalleryState(_State):
    """A gallery: its images by ``image_id`` and how many there are.

    ``failed`` holds failed jobs of images not shown; ``deleted`` the ids of
    deleted images with when they were deleted.
    """

    gallery_id: str
    images: dict[str, GalleryImage] = Field(default_factory=dict)
    failed: dict[str, FailedJob] = Field(default_factory=dict)
    deleted: dict[str, datetime] = Field(default_factory=dict)
    image_count: int = 0
    updated_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready dict stored in the ``galleries`` table."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GalleryState:
        """Rebuild a gallery from :meth:`to_json` output.

        Raises:
            pydantic.ValidationError: ``data`` is not a stored gallery.
        """
        return cls.model_validate(data)


def image_of(event: CatalogedV1) -> GalleryImage:
    """Return the gallery entry a complete job's cataloged event describes."""
    return GalleryImage(
        filename=event.filename,
        job_id=event.job_id,
        variants={
            v.name: GalleryVariant(
                key=v.object_key, width=v.width, height=v.height, format=v.format, bytes=v.bytes
            )
            for v in event.variants
        },
        metadata=event.metadata,
        thumbhash=event.thumbhash,
        dominant_colour=event.dominant_colour,
        completed_at=event.completed_at,
    )


def apply_cataloged(gallery: GalleryState | None, event: CatalogedV1) -> GalleryState | None:
    """Upsert the image of a complete job into its gallery.

    Args:
        gallery: the gallery's current state, or ``None`` if it has none yet.
        event: a cataloged event of that gallery.

    Returns:
        The new gallery state, or ``None`` when nothing changes: the image was
        deleted, the same entry is already there, or the image shows a job
        that completed later. A failed job is recorded in ``failed`` unless
        the gallery shows the image.
    """
    if gallery is not None and event.image_id in gallery.deleted:
        return None
    if event.status != "complete":
        return _apply_failed(gallery, event)
    entry = image_of(event)
    current = gallery.images.get(event.image_id) if gallery is not None else None
    if current is not None and (current == entry or current.completed_at > entry.completed_at):
        return None
    new = (
        gallery.model_copy(deep=True)
        if gallery is not None
        else GalleryState(gallery_id=event.gallery_id)
    )
    new.images[event.image_id] = entry
    new.failed.pop(event.image_id, None)
    new.image_count = len(new.images)
    new.updated_at = max(new.updated_at or entry.completed_at, entry.completed_at)
    return new


def _apply_failed(gallery: GalleryState | None, event: CatalogedV1) -> GalleryState | None:
    if gallery is not None and event.image_id in gallery.images:
        return None
    entry = FailedJob(
        filename=event.filename,
        job_id=event.job_id,
        attempts=event.attempts,
        reason_code=event.reason_code,
        reason_message=event.reason_message,
        completed_at=event.completed_at,
    )
    current = gallery.failed.get(event.image_id) if gallery is not None else None
    if current is not None and (current == entry or current.completed_at > entry.completed_at):
        return None
    new = (
        gallery.model_copy(deep=True)
        if gallery is not None
        else GalleryState(gallery_id=event.gallery_id)
    )
    new.failed[event.image_id] = entry
    return new


def apply_image_deleted(gallery: GalleryState | None, event: ImageDeletedV1) -> GalleryState | None:
    """Remove a deleted image from its gallery and remember it was deleted.

    Returns:
        The new gallery state, or ``None`` when the image was already deleted
        (idempotent).
    """
    if gallery is not None and event.image_id in gallery.deleted:
        return None
    new = (
        gallery.model_copy(deep=True)
        if gallery is not None
        else GalleryState(gallery_id=event.gallery_id)
    )
    new.images.pop(event.image_id, None)
    new.failed.pop(event.image_id, None)
    new.deleted[event.image_id] = event.occurred_at
    new.image_count = len(new.images)
    new.updated_at = max(new.updated_at or event.occurred_at, event.occurred_at)
    return new
