"""Gallery state: what a gallery shows, built from ``cataloged`` events of complete jobs.

The ``galleries`` table holds one :class:`GalleryState` (as :meth:`GalleryState.to_json`)
per ``gallery_id``. Only complete jobs change it, by upsert on ``image_id``: a
failed job leaves what the gallery showed before untouched, and a replayed or
re-sent cataloged event never adds an image twice. An image already shown from
a job that completed later than the incoming one is kept (an old job's late
event does not roll the image back).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from darkroom_schemas import CatalogedV1, ImageMetadata


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


class GalleryState(_State):
    """A gallery: its images by ``image_id`` and how many there are."""

    gallery_id: str
    images: dict[str, GalleryImage] = Field(default_factory=dict)
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
        The new gallery state, or ``None`` when nothing changes: the job
        failed, the same entry is already there, or the image shows a job that
        completed later.
    """
    if event.status != "complete":
        return None
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
    new.image_count = len(new.images)
    new.updated_at = max(new.updated_at or entry.completed_at, entry.completed_at)
    return new
