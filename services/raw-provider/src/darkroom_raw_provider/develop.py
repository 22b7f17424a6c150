"""The raw-provider handler: a validated RAW in, a validated JPEG master out.

The master is stored under a deterministic key and re-enters the flow as a
second ``validated`` event whose ``derived_from`` names the RAW original, so the
variants planner renders it like any raster upload, while the job keeps the
RAW's own EXIF. A RAW that cannot be developed (no image data, garbage, black)
becomes a rejection with the engine's reason code.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path

from darkroom_common.errors import ObjectNotFound
from darkroom_common.objects import download, master_key
from darkroom_common.storage import ObjectStore
from darkroom_imaging.outcomes import Failure
from darkroom_imaging.raw import develop
from darkroom_raw_provider.settings import RawProviderSettings
from darkroom_schemas import ProbeInfo, ValidatedV1


def needed_long_edge(probe: ProbeInfo | None, box: tuple[int, int]) -> int:
    """Return the long edge (px) a master needs so the largest variant is not upscaled.

    The largest variant fits the image *inside* ``box``; for a 3:2 sensor and a
    1920×1080 box that is 1620×1080, so a 1728×1152 embedded preview suffices.
    Without a probe, the box's long edge.
    """
    if probe is None or probe.width <= 0 or probe.height <= 0:
        return max(box)
    w, h = (probe.height, probe.width) if probe.orientation >= 5 else (probe.width, probe.height)
    scale = min(box[0] / w, box[1] / h, 1.0)
    return max(1, round(max(w, h) * scale))


def wants(event: ValidatedV1) -> bool:
    """Whether this stage develops ``event``: an accepted RAW original (not a master)."""
    return event.accepted and event.is_raw and event.derived_from is None


async def develop_raw(
    event: ValidatedV1, *, store: ObjectStore, settings: RawProviderSettings
) -> ValidatedV1:
    """Develop the RAW of ``event`` and return the ``validated`` event of its master.

    Raises:
        StorageUnavailable: the object store failed (retriable).
    """
    base = {
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
    with tempfile.TemporaryDirectory(prefix="darkroom-raw-", dir=settings.work_dir) as tmp:
        path = Path(tmp) / f"original.{event.probe.format if event.probe else 'raw'}"
        try:
            await download(store, event.object_key, path)
        except ObjectNotFound:
            return ValidatedV1(
                **base,
                accepted=False,
                object_key=event.object_key,
                reason_code="missing_original",
                reason_message=f"The RAW original {event.object_key!r} is no longer in the object store.",
            )
        result = await asyncio.to_thread(
            develop,
            path,
            policy=settings.policy,
            min_long_edge=needed_long_edge(event.probe, settings.master_box),
            max_seconds=settings.max_seconds,
            max_memory_bytes=settings.max_memory_bytes,
            quality=settings.master_quality,
        )
    if isinstance(result, Failure):
        return ValidatedV1(
            **base,
            accepted=False,
            object_key=event.object_key,
            reason_code=result.reason.value,
            reason_message=result.message,
        )
    key = master_key(event.gallery_id, event.image_id)
    await store.put(
        key,
        result.jpeg,
        content_type="image/jpeg",
        metadata={  # object metadata keys allow [a-z0-9-] only
            k.replace("_", "-"): str(v)
            for k, v in result.provenance.items()
            if isinstance(v, str | int | float)
        },
    )
    return ValidatedV1(
        **base,
        accepted=True,
        object_key=key,
        sha256=hashlib.sha256(result.jpeg).hexdigest(),
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
