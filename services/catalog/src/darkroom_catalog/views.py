"""What the API shows of jobs and images: pure functions from table state to JSON-ready dicts.

Object keys become URLs through a :data:`UrlFor` callable the web layer passes
in (CDN base URL, presigned GET, or the catalog's own ``/v1/objects/`` route).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from darkroom_catalog.galleries import FailedJob, GalleryImage, GalleryState
from darkroom_catalog.jobs import JobState
from darkroom_schemas import ImageMetadata

UrlFor = Callable[[str], Awaitable[str]]
"""Turns an object key into a URL a client can GET."""

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class BadQuery(ValueError):
    """A query parameter is invalid; ``reason`` is the API's reason code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


PRIVATE_METADATA = frozenset({"gps_latitude", "gps_longitude", "gps_altitude"})
"""EXIF fields the API never shows: where a photo was taken stays in the pipeline's events."""


def public_metadata(metadata: ImageMetadata | None) -> dict[str, Any] | None:
    """Return the EXIF summary the API shows: every field but :data:`PRIVATE_METADATA`."""
    return metadata.model_dump(mode="json", exclude=set(PRIVATE_METADATA)) if metadata else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def job_view(job: JobState, url_for: UrlFor) -> dict[str, Any]:
    """Return the public view of a job (``GET /v1/jobs/{job_id}`` and each SSE event).

    Shape: ids, ``status``, ``attempts``, ``filename``, ``error`` (``{code, message}``
    or null), ``created_at`` / ``updated_at`` / ``completed_at`` (ISO 8601 UTC),
    ``provider_job_id``, ``variant_count`` and ``variants`` by name (``status``,
    ``format``, ``width``/``height`` px, ``bytes``, ``url`` once done, reason when failed).
    """
    variants: dict[str, Any] = {}
    for name, v in sorted(job.variants.items()):
        if v.attempt != job.attempts:
            continue
        variants[name] = {
            "status": v.status,
            "format": v.format,
            "width": v.width,
            "height": v.height,
            "bytes": v.bytes,
            "url": await url_for(v.object_key) if v.status == "done" and v.object_key else None,
            "reason_code": v.reason_code,
            "reason_message": v.reason_message,
        }
    return {
        "job_id": job.job_id,
        "image_id": job.image_id,
        "gallery_id": job.gallery_id,
        "status": job.status,
        "attempts": job.attempts,
        "filename": job.filename,
        "error": job.error.model_dump() if job.error else None,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
        "completed_at": _iso(job.completed_at),
        "provider_job_id": job.provider_job_id,
        "duplicate_of": job.duplicate_of,
        "variant_count": job.variant_count,
        "variants": variants,
    }


async def _variants(variants: dict[str, Any], url_for: UrlFor) -> dict[str, Any]:
    return {
        name: {
            "url": await url_for(v["key"]),
            "width": v["width"],
            "height": v["height"],
            "format": v["format"],
            "bytes": v["bytes"],
        }
        for name, v in sorted(variants.items())
    }


async def image_of_job(job: JobState, url_for: UrlFor) -> dict[str, Any]:
    """Return the public view of an image from its job (``GET /v1/images/{image_id}``).

    Shape: ``image_id``, ``gallery_id``, ``job_id``, ``filename``, ``status``,
    ``error``, ``variants`` (done ones, with URLs), ``metadata`` (EXIF summary
    without the GPS position, :func:`public_metadata`),
    ``thumbhash``, ``dominant_colour`` (``#rrggbb``), ``completed_at``.
    """
    done = {
        name: {"key": v.object_key, "width": v.width, "height": v.height}
        | {"format": v.format, "bytes": v.bytes}
        for name, v in job.done_variants().items()
        if v.object_key
    }
    return {
        "image_id": job.image_id,
        "gallery_id": job.gallery_id,
        "job_id": job.job_id,
        "filename": job.filename,
        "status": job.status,
        "error": job.error.model_dump() if job.error else None,
        "variants": await _variants(done, url_for),
        "metadata": public_metadata(job.metadata),
        "thumbhash": job.thumbhash,
        "dominant_colour": job.dominant_colour,
        "completed_at": _iso(job.completed_at),
    }


async def _gallery_item(
    image_id: str, entry: GalleryImage | FailedJob, url_for: UrlFor
) -> dict[str, Any]:
    if isinstance(entry, GalleryImage):
        return {
            "image_id": image_id,
            "job_id": entry.job_id,
            "filename": entry.filename,
            "status": "complete",
            "error": None,
            "variants": await _variants(
                {k: v.model_dump() for k, v in entry.variants.items()}, url_for
            ),
            "metadata": public_metadata(entry.metadata),
            "thumbhash": entry.thumbhash,
            "dominant_colour": entry.dominant_colour,
            "completed_at": _iso(entry.completed_at),
        }
    return {
        "image_id": image_id,
        "job_id": entry.job_id,
        "filename": entry.filename,
        "status": "failed",
        "error": {"code": entry.reason_code or "failed", "message": entry.reason_message},
        "variants": {},
        "metadata": None,
        "thumbhash": None,
        "dominant_colour": None,
        "completed_at": _iso(entry.completed_at),
    }


def encode_cursor(completed_at: datetime, image_id: str) -> str:
    """Return the opaque cursor of the item after which the next page starts."""
    raw = json.dumps([completed_at.isoformat(), image_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Return ``(completed_at, image_id)`` of a cursor.

    Raises:
        BadQuery: ``invalid_cursor``, the cursor was not made by :func:`encode_cursor`.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, image_id = json.loads(raw)
        return datetime.fromisoformat(at), str(image_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadQuery("invalid_cursor", "the cursor is not one this API returned") from exc


def parse_limit(value: str | None) -> int:
    """Return the page size: default :data:`DEFAULT_LIMIT`, 1..:data:`MAX_LIMIT`.

    Raises:
        BadQuery: ``invalid_limit``.
    """
    if value is None:
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise BadQuery("invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(value)


async def gallery_page(
    gallery_id: str,
    gallery: GalleryState | None,
    url_for: UrlFor,
    *,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """Return one page of a gallery's images, oldest completion first.

    Complete images and failed jobs of images not shown are listed together,
    ordered by ``(completed_at, image_id)``; ``next_cursor`` is null on the
    last page; ``total`` counts every listed item. An unknown gallery is empty.

    Raises:
        BadQuery: ``invalid_cursor``.
    """
    entries: list[tuple[datetime, str, GalleryImage | FailedJob]] = []
    if gallery is not None:
        entries += [(e.completed_at, i, e) for i, e in gallery.images.items()]
        entries += [(e.completed_at, i, e) for i, e in gallery.failed.items()]
    entries.sort(key=lambda t: (t[0], t[1]))
    if cursor is not None:
        after = decode_cursor(cursor)
        entries_after = [t for t in entries if (t[0], t[1]) > after]
    else:
        entries_after = entries
    page = entries_after[:limit]
    more = len(entries_after) > limit
    return {
        "gallery_id": gallery_id,
        "total": len(entries),
        "image_count": gallery.image_count if gallery is not None else 0,
        "images": [await _gallery_item(i, e, url_for) for _, i, e in page],
        "next_cursor": encode_cursor(page[-1][0], page[-1][1]) if more and page else None,
    }
