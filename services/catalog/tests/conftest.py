"""Event factories shared by the catalog's tests: one realistic flow per image."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from darkroom_schemas import (
    ImageMetadata,
    ProbeInfo,
    UploadedV1,
    ValidatedV1,
    VariantDoneV1,
    VariantRequestedV1,
)

T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
SHA = "ab" * 32
SIZES = {"thumb": (320, 213), "medium": (1280, 853), "large": (2560, 1707), "small": (640, 427)}
_clock = itertools.count()


def _at() -> datetime:
    return T0 + timedelta(seconds=next(_clock))


class Flow:
    """Builds the events of one job, each with a fresh event_id and a later occurred_at."""

    def __init__(self, image_id: str, gallery_id: str = "g1", job_id: str | None = None) -> None:
        self.image_id = image_id
        self.gallery_id = gallery_id
        self.job_id = job_id or f"job-{image_id}"
        self.ids = {
            "image_id": image_id,
            "gallery_id": gallery_id,
            "job_id": self.job_id,
            "correlation_id": f"corr-{image_id}",
        }

    def uploaded(self, attempt: int = 1, filename: str = "IMG_0001.JPG") -> UploadedV1:
        return UploadedV1(
            **self.ids,
            occurred_at=_at(),
            attempt=attempt,
            object_key=f"originals/{self.gallery_id}/{self.image_id}/{filename}",
            filename=filename,
            size_bytes=4_000_000,
            content_type="image/jpeg",
        )

    def validated(self, attempt: int = 1, **fields: Any) -> ValidatedV1:
        values: dict[str, Any] = {
            "accepted": True,
            "object_key": f"originals/{self.gallery_id}/{self.image_id}/IMG_0001.JPG",
            "filename": "IMG_0001.JPG",
            "sha256": SHA,
            "probe": ProbeInfo(
                format="jpeg", mime_type="image/jpeg", width=6000, height=4000, pixels=24_000_000
            ),
            "metadata": ImageMetadata(make="Canon", model="EOS R5", iso=200, f_number=2.8),
        }
        values.update(fields)
        return ValidatedV1(**self.ids, occurred_at=_at(), attempt=attempt, **values)

    def requested(
        self, variant: str, count: int, attempt: int = 1, source_key: str | None = None
    ) -> VariantRequestedV1:
        return VariantRequestedV1(
            **self.ids,
            occurred_at=_at(),
            attempt=attempt,
            variant=variant,
            spec_hash=f"{variant}-spec01",
            spec_json="{}",
            profile="default",
            variant_count=count,
            source_key=source_key or f"originals/{self.gallery_id}/{self.image_id}/IMG_0001.JPG",
            source_sha256=SHA,
        )

    def done(self, variant: str, attempt: int = 1, **fields: Any) -> VariantDoneV1:
        width, height = SIZES.get(variant, (100, 66))
        values: dict[str, Any] = {
            "status": "done",
            "object_key": f"variants/{self.image_id}/{variant}-spec01.webp",
            "format": "webp",
            "width": width,
            "height": height,
            "bytes": width * 10,
            "duration_ms": 12.5,
            "thumbhash": f"th-{variant}",
            "dominant_colour": f"#{len(variant):06x}",
        }
        values.update(fields)
        return VariantDoneV1(
            **self.ids,
            occurred_at=_at(),
            attempt=attempt,
            variant=variant,
            spec_hash=f"{variant}-spec01",
            **values,
        )

    def failed(self, variant: str, attempt: int = 1, reason: str = "decode_error") -> VariantDoneV1:
        return VariantDoneV1(
            **self.ids,
            occurred_at=_at(),
            attempt=attempt,
            variant=variant,
            spec_hash=f"{variant}-spec01",
            status="failed",
            reason_code=reason,
            reason_message=f"{variant} could not be rendered",
        )

    def happy(self, variants: tuple[str, ...] = ("thumb", "medium"), attempt: int = 1) -> list[Any]:
        """The events of a job that completes: upload, validation, requests, renders."""
        events: list[Any] = [self.uploaded(attempt), self.validated(attempt)]
        events += [self.requested(v, len(variants), attempt) for v in variants]
        events += [self.done(v, attempt) for v in variants]
        return events


@pytest.fixture
def flow() -> type[Flow]:
    """The :class:`Flow` factory class."""
    return Flow
