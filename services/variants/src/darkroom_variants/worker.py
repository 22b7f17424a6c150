"""Render workers: variant requests in, rendered variants and ``variant-done`` events out.

Requests are per variant, so each is retried and reported on its own; but a
worker takes the requests waiting in its partitions together and renders all
the requests of one source from a single decode (libvips shrink-on-load to the
largest size needed, every variant derived in memory). Rendering runs on a
thread pool, never on the event loop. If a variant's upload fails and is
retried, only that variant is rendered again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from darkroom_common.errors import DarkroomError, ObjectNotFound
from darkroom_common.metrics import Metrics
from darkroom_common.objects import download, put_counted, variant_key
from darkroom_common.storage import ObjectStore
from darkroom_imaging.outcomes import Failure, Reason
from darkroom_imaging.render import RenderContext, RenderedVariant, render
from darkroom_imaging.specs import VariantSpec, spec_hash
from darkroom_schemas import VariantDoneV1, VariantRequestedV1
from darkroom_variants.settings import VariantsSettings

log = logging.getLogger(__name__)

Outcome = RenderedVariant | Failure
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
"""Which render worker made a variant (host:pid), recorded in its provenance."""


def parse_spec(request: VariantRequestedV1) -> VariantSpec | Failure:
    """Return the request's spec, or ``invalid_spec`` when it does not parse or hash as sent."""
    try:
        spec = VariantSpec.model_validate_json(request.spec_json)
    except ValidationError as exc:
        return Failure(
            Reason.INVALID_SPEC, f"The variant spec does not validate: {exc.errors()[0]['msg']}."
        )
    if spec_hash(spec) != request.spec_hash:
        return Failure(
            Reason.INVALID_SPEC,
            "The spec hash does not match the spec; the planner and this worker disagree on the renderer.",
        )
    return spec


@dataclass(slots=True)
class SourceBatch:
    """Requests for one source (same object key and sha256), rendered from one decode."""

    source_key: str
    source_sha256: str
    requests: list[VariantRequestedV1] = field(default_factory=list)
    outcomes: dict[tuple[str, str], Outcome] = field(default_factory=dict)
    decode_seconds: float = 0.0


def group_by_source(requests: Sequence[VariantRequestedV1]) -> list[SourceBatch]:
    """Group requests by (source_key, source_sha256), keeping first-seen order."""
    batches: dict[tuple[str, str], SourceBatch] = {}
    for r in requests:
        key = (r.source_key, r.source_sha256)
        batches.setdefault(key, SourceBatch(*key)).requests.append(r)
    return list(batches.values())


class Renderer:
    """Renders batches and single requests; stores outputs under deterministic keys.

    Args:
        store: where sources are read and variants written.
        settings: the service settings (background, pixel limit, temp folder).
        executor: the thread pool rendering runs on.
    """

    def __init__(self, store: ObjectStore, settings: VariantsSettings, executor: Executor) -> None:
        self.store = store
        self.settings = settings
        self.executor = executor

    def _context(self, request: VariantRequestedV1) -> RenderContext:
        return RenderContext(
            artist=request.artist or "",
            copyright=request.copyright or "",
            background=self.settings.background,
            max_pixels=self.settings.max_pixels,
            source_sha256=request.source_sha256,
        )

    async def render_batch(self, batch: SourceBatch) -> None:
        """Render every distinct spec of ``batch`` from one download and one decode.

        Fills ``batch.outcomes`` keyed by (variant, spec_hash). A missing source
        becomes a ``missing_source`` failure of every request.

        Raises:
            StorageUnavailable: the source could not be read (retriable).
        """
        specs: dict[str, VariantSpec] = {}
        names: dict[str, tuple[str, str]] = {}
        for r in batch.requests:
            key = (r.variant, r.spec_hash)
            parsed = parse_spec(r)
            if isinstance(parsed, Failure):
                batch.outcomes[key] = parsed
            elif key not in batch.outcomes:
                # Two profiles may use one name for different specs: render each once.
                unique = r.variant if r.variant not in specs else f"{r.variant}-{r.spec_hash}"
                specs[unique] = parsed.model_copy(update={"name": unique})
                names[unique] = key
        if not specs:
            return
        with tempfile.TemporaryDirectory(
            prefix="darkroom-render-", dir=self.settings.work_dir
        ) as tmp:
            path = Path(tmp) / "source"
            try:
                await download(self.store, batch.source_key, path)
            except ObjectNotFound:
                missing = Failure(
                    Reason.SOURCE_MISSING,
                    f"The source {batch.source_key!r} is not in the object store; upload it again.",
                )
                for key in names.values():
                    batch.outcomes[key] = missing
                return
            started = time.perf_counter()
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                self.executor,
                lambda: render(
                    path, list(specs.values()), context=self._context(batch.requests[0])
                ),
            )
            batch.decode_seconds = time.perf_counter() - started
        for outcome in result.outcomes:
            key = names[outcome.name]
            batch.outcomes[key] = (
                outcome if isinstance(outcome, RenderedVariant) else outcome.failure
            )

    async def render_one(self, request: VariantRequestedV1) -> Outcome:
        """Render a single request (the retry path after a failed upload)."""
        batch = SourceBatch(request.source_key, request.source_sha256, [request])
        await self.render_batch(batch)
        return batch.outcomes[(request.variant, request.spec_hash)]

    async def publish(self, request: VariantRequestedV1, outcome: Outcome) -> VariantDoneV1:
        """Store a rendered variant under its deterministic key; return its ``variant-done``.

        Raises:
            StorageUnavailable: the upload failed (retriable).
        """
        ids = {
            "job_id": request.job_id,
            "gallery_id": request.gallery_id,
            "image_id": request.image_id,
            "correlation_id": request.correlation_id,
            "attempt": request.attempt,
            "variant": request.variant,
            "spec_hash": request.spec_hash,
        }
        if isinstance(outcome, Failure):
            return VariantDoneV1(
                **ids,
                status="failed",
                reason_code=outcome.reason.value,
                reason_message=outcome.message,
            )
        spec = VariantSpec.model_validate_json(request.spec_json)
        key = variant_key(
            request.gallery_id, request.image_id, request.variant, request.spec_hash, spec.extension
        )
        Metrics.default().variant_seconds.labels(request.variant, outcome.format).observe(
            outcome.seconds
        )
        await put_counted(
            self.store,
            key,
            outcome.data,
            content_type=outcome.mime,
            metadata={  # lets a replay reuse this object without rendering it again
                "width": str(outcome.width),
                "height": str(outcome.height),
                "format": outcome.format,
                "thumbhash": outcome.thumbhash,
                "dominant-colour": outcome.dominant_colour,
                "source-sha256": request.source_sha256,
            },
        )
        return VariantDoneV1(
            **ids,
            status="done",
            object_key=key,
            format=outcome.format,
            width=outcome.width,
            height=outcome.height,
            bytes=outcome.bytes,
            duration_ms=round(outcome.seconds * 1000, 3),
            thumbhash=outcome.thumbhash,
            dominant_colour=outcome.dominant_colour,
            provenance={**flatten(outcome.provenance), "worker": WORKER_ID},
        )


async def reuse(
    store: ObjectStore, request: VariantRequestedV1, *, same_source: bool = False
) -> VariantDoneV1 | None:
    """Return a ``done`` for ``request`` from the object already under its key, or ``None``.

    The key is derived from (image, variant, spec hash), so an object there was
    rendered from this exact spec; its metadata (written by :meth:`Renderer.publish`)
    gives the sizes. ``None`` when there is no such object or it lacks that metadata,
    or, with ``same_source``, when it was not recorded as rendered from the request's
    ``source_sha256`` (a retried RAW may have a new master under the same key).
    ``None`` too when the store cannot tell (unavailable, access denied): the render
    path then meets the same store under the stage runner's retries and dead letters.
    """
    try:
        spec = VariantSpec.model_validate_json(request.spec_json)
    except ValidationError:
        return None
    key = variant_key(
        request.gallery_id, request.image_id, request.variant, request.spec_hash, spec.extension
    )
    try:
        info = await store.head(key)
    except ObjectNotFound:
        return None
    except DarkroomError as exc:
        log.warning("reuse check failed; rendering", extra={"key": key, "error": str(exc)})
        return None
    meta = info.metadata
    if not {"width", "height", "format"} <= meta.keys():
        return None
    if same_source and meta.get("source-sha256") != request.source_sha256:
        return None
    return VariantDoneV1(
        job_id=request.job_id,
        gallery_id=request.gallery_id,
        image_id=request.image_id,
        correlation_id=request.correlation_id,
        attempt=request.attempt,
        variant=request.variant,
        spec_hash=request.spec_hash,
        status="done",
        object_key=key,
        format=meta["format"],
        width=int(meta["width"]),
        height=int(meta["height"]),
        bytes=info.size,
        duration_ms=0.0,
        thumbhash=meta.get("thumbhash"),
        dominant_colour=meta.get("dominant-colour"),
        provenance={"reused": "true", "worker": WORKER_ID},
    )


def flatten(provenance: dict[str, object]) -> dict[str, str]:
    """Return provenance as ``str → str`` (nested values as compact JSON), for the Avro map."""
    return {
        k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), sort_keys=True)
        for k, v in provenance.items()
    }
