"""The ingest stage's decision: accept an upload (with probe and metadata) or reject it.

:func:`validate_upload` is the decision, free of Kafka: it takes the upload
event, the object store, the gallery index and the metrics, and returns the
``validated`` event. Expected problems — a truncated file, a renamed HTML page, a
decompression bomb, a duplicate, a full gallery — are rejections carrying a
reason code and a sentence. Only infrastructure errors raise (and are retried).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from darkroom_common.errors import ObjectNotFound
from darkroom_common.metrics import Metrics
from darkroom_common.objects import download, is_image_key
from darkroom_common.storage import ObjectStore
from darkroom_imaging.metadata import Metadata, read_metadata
from darkroom_imaging.outcomes import Failure
from darkroom_imaging.probe import Probe, ProbeLimits, probe
from darkroom_ingest.settings import IngestSettings
from darkroom_schemas import ImageMetadata, ProbeInfo, UploadedV1, ValidatedV1

log = logging.getLogger(__name__)

MISSING_ORIGINAL = "missing_original"
FORMAT_NOT_ALLOWED = "format_not_allowed"
DUPLICATE = "duplicate"
GALLERY_FULL = "gallery_full"
FOREIGN_OBJECT_KEY = "foreign_object_key"


class GalleryIndex(Protocol):
    """What ingest remembers per gallery: content hashes and the image count.

    Implemented by the stage's tables, partitioned by gallery_id
    (:class:`~darkroom_ingest.gate.TableGalleryIndex`); every call for one gallery
    happens on the worker that owns its partition.
    """

    def image_for(self, gallery_id: str, sha256: str) -> str | None:
        """Return the image_id already holding these bytes in the gallery, if any."""

    def count(self, gallery_id: str) -> int:
        """Return how many distinct images the gallery has accepted."""

    def add(self, gallery_id: str, sha256: str, image_id: str) -> None:
        """Record that ``image_id`` holds bytes ``sha256`` (idempotent per image_id)."""


@dataclass(frozen=True, slots=True)
class Examined:
    """What ingest learnt from the bytes: hash, size, probe (or failure) and metadata."""

    sha256: str
    size: int
    probe: Probe | Failure
    metadata: Metadata | None


def examine(
    path: Path, filename: str, limits: ProbeLimits
) -> tuple[Probe | Failure, Metadata | None]:
    """Probe ``path`` from its headers and, when accepted, read its EXIF (blocking; CPU + I/O)."""
    result = probe(path, declared_name=filename, limits=limits)
    if isinstance(result, Failure):
        return result, None
    return result, read_metadata(path)


def probe_info(p: Probe) -> ProbeInfo:
    """Convert the engine's :class:`Probe` to the event record."""
    return ProbeInfo(
        format=p.format.value,
        mime_type=p.mime_type,
        width=p.width,
        height=p.height,
        pixels=p.pixels,
        frames=max(p.frames, 1),
        bit_depth=p.bit_depth,
        colour_space=p.color_space,
        icc_description=p.icc_description,
        orientation=p.orientation if 1 <= p.orientation <= 8 else 1,
    )


def image_metadata(m: Metadata) -> ImageMetadata:
    """Convert the engine's :class:`Metadata` to the event record (EXIF names, SI units)."""
    return ImageMetadata(
        make=m.make,
        model=m.model,
        lens_model=m.lens_model,
        date_time_original=m.date_time_original,
        offset_time_original=m.offset_time_original,
        date_time_original_source=m.date_time_original_source,
        gps_latitude=m.gps_latitude,
        gps_longitude=m.gps_longitude,
        gps_altitude=m.gps_altitude,
        iso=m.iso,
        f_number=m.f_number,
        exposure_time=m.exposure_time,
        exposure_seconds=m.exposure_seconds,
        focal_length=m.focal_length,
        focal_length_35mm=m.focal_length_35mm,
        orientation=m.orientation,
        flash=m.flash,
        white_balance=m.white_balance,
        artist=m.artist,
        copyright=m.copyright,
        software=m.software,
        warnings=list(m.warnings),
    )


def _verdict(upload: UploadedV1, **fields: object) -> ValidatedV1:
    return ValidatedV1(
        job_id=upload.job_id,
        gallery_id=upload.gallery_id,
        image_id=upload.image_id,
        correlation_id=upload.correlation_id,
        attempt=upload.attempt,
        object_key=upload.object_key,
        filename=upload.filename,
        profile=upload.profile,
        **fields,
    )


def reject(upload: UploadedV1, reason: str, message: str, **fields: object) -> ValidatedV1:
    """Return the ``validated`` event rejecting ``upload`` with ``reason`` and one sentence."""
    return _verdict(upload, accepted=False, reason_code=reason, reason_message=message, **fields)


async def validate_upload(
    upload: UploadedV1,
    *,
    store: ObjectStore,
    index: GalleryIndex,
    settings: IngestSettings,
    metrics: Metrics,
) -> ValidatedV1:
    """Decide on one upload.

    Streams the original to a temporary file (hashing it on the way), probes its
    headers and reads its EXIF in a worker thread, then applies the format
    allowlist, duplicate detection and the per-gallery limit.

    An upload whose ``object_key`` is not ``…/<gallery_id>/<image_id>/<name>`` is
    refused unread (``foreign_object_key``): an event must not pull another gallery's
    (or image's) original into its own gallery.

    Args:
        metrics: the bytes downloaded are counted in its ``darkroom_object_bytes_total``.

    Raises:
        StorageUnavailable: the object store failed (retriable).
    """
    if not is_image_key(upload.object_key, upload.gallery_id, upload.image_id):
        return reject(
            upload,
            FOREIGN_OBJECT_KEY,
            f"The object key {upload.object_key[:300]!r} is not an object of image "
            f"{upload.image_id!r} in gallery {upload.gallery_id!r} "
            f"(expected .../{upload.gallery_id}/{upload.image_id}/<file name>).",
        )
    if upload.size_bytes > settings.max_upload_bytes:
        return reject(
            upload,
            "file_too_large",
            f"The upload has {upload.size_bytes} bytes, more than the limit of {settings.max_upload_bytes}.",
        )
    limits = ProbeLimits(max_pixels=settings.max_pixels, max_bytes=settings.max_upload_bytes)
    with tempfile.TemporaryDirectory(prefix="darkroom-ingest-", dir=settings.work_dir) as tmp:
        path = Path(tmp) / "original"
        try:
            sha256, size = await download(store, upload.object_key, path, metrics)
        except ObjectNotFound:
            return reject(
                upload,
                MISSING_ORIGINAL,
                f"The original {upload.object_key!r} is not in the object store; upload it again.",
            )
        examined, metadata = await asyncio.to_thread(examine, path, upload.filename, limits)
    if isinstance(examined, Failure):
        if examined.detail:  # the library's text: for the operator, not in the event
            log.warning(
                "upload rejected",
                extra={
                    "job_id": upload.job_id,
                    "reason": examined.reason.value,
                    "detail": examined.detail,
                },
            )
        return reject(upload, examined.reason.value, examined.message, sha256=sha256)
    if examined.format.value not in settings.allowed_formats:
        return reject(
            upload,
            FORMAT_NOT_ALLOWED,
            f"{examined.format.value.upper()} files are not accepted here; "
            f"accepted formats: {', '.join(settings.allowed_formats)}.",
            sha256=sha256,
        )
    holder = index.image_for(upload.gallery_id, sha256)
    if holder is not None and holder != upload.image_id:
        return reject(
            upload,
            DUPLICATE,
            f"The same file is already in this gallery as image {holder}.",
            sha256=sha256,
            duplicate_of=holder,
        )
    if holder is None and index.count(upload.gallery_id) >= settings.max_images_per_gallery:
        return reject(
            upload,
            GALLERY_FULL,
            f"The gallery already holds {settings.max_images_per_gallery} images, its limit.",
            sha256=sha256,
        )
    index.add(upload.gallery_id, sha256, upload.image_id)
    log.info("accepted", extra={"format": examined.format.value, "bytes": size})
    return _verdict(
        upload,
        accepted=True,
        sha256=sha256,
        is_raw=examined.is_raw,
        probe=probe_info(examined),
        metadata=image_metadata(metadata) if metadata is not None else None,
    )
