"""Render workers: parsed variant requests in, stored variants and ``variant-done`` events out.

:class:`Renderer` renders the requests of one source from a single download and decode
(libvips shrink-on-load to the largest size needed, every variant derived in memory) on
a thread pool, never on the event loop, and :meth:`~Renderer.publish` stores each
variant under its deterministic key. :func:`reuse` answers a request from the object
already under that key.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from darkroom_common.errors import DarkroomError, ObjectNotFound
from darkroom_common.metrics import Metrics
from darkroom_common.objects import download, put_counted
from darkroom_common.storage import ObjectStore
from darkroom_imaging.outcomes import Failure, Reason
from darkroom_imaging.render import RenderContext, RenderedVariant, render_async
from darkroom_imaging.specs import VariantSpec
from darkroom_schemas import VariantDoneV1, VariantRequestedV1
from darkroom_variants.request import RenderRequest, Slot
from darkroom_variants.settings import VariantsSettings

log = logging.getLogger(__name__)

Outcome = RenderedVariant | Failure
"""What rendering one slot gave: the encoded variant, or why there is none."""
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
"""Which render worker made a variant (host:pid), recorded in its provenance."""


class Renderer:
    """Renders the requests of one source and stores their outputs under deterministic keys.

    Args:
        store: where sources are read and variants written.
        settings: background colour, pixel limit and temp folder (``work_dir``).
        executor: the thread pool rendering runs on.
        metrics: where render times and object bytes are counted.
    """

    def __init__(
        self, store: ObjectStore, settings: VariantsSettings, executor: Executor, metrics: Metrics
    ) -> None:
        self.store = store
        self.settings = settings
        self.executor = executor
        self.metrics = metrics

    async def render(self, requests: Sequence[RenderRequest]) -> dict[Slot, Outcome]:
        """Render every distinct slot of ``requests`` from one download and one decode.

        Args:
            requests: requests of one source (same ``source_key`` and ``source_sha256``).

        Returns:
            Each slot's rendered variant, or its failure (``source_missing`` for every
            slot when the source is not in the store; decode and encode failures).

        Raises:
            ValueError: the requests name more than one source.
            StorageUnavailable: the source could not be read (retriable).
        """
        if len({r.source for r in requests}) > 1:
            raise ValueError("render() takes the requests of one source")
        specs: dict[str, VariantSpec] = {}
        slots: dict[str, Slot] = {}
        for r in requests:
            if r.slot in slots.values():
                continue
            # Two profiles may use one name for different specs: render each once.
            unique = r.event.variant if r.event.variant not in specs else "-".join(r.slot)
            specs[unique] = r.spec.model_copy(update={"name": unique})
            slots[unique] = r.slot
        if not specs:
            return {}
        first = requests[0].event
        with tempfile.TemporaryDirectory(
            prefix="darkroom-render-", dir=self.settings.work_dir
        ) as tmp:
            path = Path(tmp) / "source"
            try:
                await download(self.store, first.source_key, path, self.metrics)
            except ObjectNotFound:
                missing = Failure(
                    Reason.SOURCE_MISSING,
                    f"The source {first.source_key!r} is not in the object store; upload it again.",
                )
                return dict.fromkeys(slots.values(), missing)
            result = await render_async(
                path, list(specs.values()), context=self._context(first), executor=self.executor
            )
        return {
            slots[o.name]: o if isinstance(o, RenderedVariant) else o.failure
            for o in result.outcomes
        }

    async def render_one(self, request: RenderRequest) -> Outcome:
        """Render ``request`` alone (the path after its batch's shared render failed).

        Raises:
            StorageUnavailable: the source could not be read (retriable).
        """
        return (await self.render([request]))[request.slot]

    async def publish(self, request: RenderRequest, outcome: Outcome) -> VariantDoneV1:
        """Store a rendered variant under ``request.key``; return its ``variant-done``.

        A failure is not stored: it becomes a failed ``variant-done`` with its reason.

        Raises:
            StorageUnavailable: the upload failed (retriable).
        """
        if isinstance(outcome, Failure):
            return failed(request.event, outcome)
        event = request.event
        self.metrics.variant_seconds.labels(event.variant, outcome.format).observe(outcome.seconds)
        await put_counted(
            self.store,
            request.key,
            outcome.data,
            self.metrics,
            content_type=outcome.mime,
            metadata={  # lets reuse() answer this request again without rendering it
                "width": str(outcome.width),
                "height": str(outcome.height),
                "format": outcome.format,
                "thumbhash": outcome.thumbhash,
                "dominant-colour": outcome.dominant_colour,
                "source-sha256": event.source_sha256,
            },
        )
        return _done(
            event,
            status="done",
            object_key=request.key,
            format=outcome.format,
            width=outcome.width,
            height=outcome.height,
            bytes=outcome.bytes,
            duration_ms=round(outcome.seconds * 1000, 3),
            thumbhash=outcome.thumbhash,
            dominant_colour=outcome.dominant_colour,
            provenance={**flatten(outcome.provenance), "worker": WORKER_ID},
        )

    def _context(self, event: VariantRequestedV1) -> RenderContext:
        return RenderContext(
            artist=event.artist or "",
            copyright=event.copyright or "",
            background=self.settings.background,
            max_pixels=self.settings.max_pixels,
            source_sha256=event.source_sha256,
        )


async def reuse(
    store: ObjectStore, request: RenderRequest, *, same_source: bool = False
) -> VariantDoneV1 | None:
    """Return a ``done`` for ``request`` from the object already under its key, or ``None``.

    The key is derived from (image, variant, spec hash), so an object there was
    rendered from this exact spec; its metadata (written by :meth:`Renderer.publish`)
    gives the sizes. ``None`` when there is no such object or it lacks that metadata,
    or, with ``same_source``, when it was not recorded as rendered from the request's
    ``source_sha256`` (a retried RAW may have a new master under the same key).
    ``None`` too when the store cannot tell (unavailable, access denied): the render
    path then meets the same store under the runtime's retries and dead letters.
    """
    try:
        info = await store.head(request.key)
    except ObjectNotFound:
        return None
    except DarkroomError as exc:
        log.warning("reuse check failed; rendering", extra={"key": request.key, "error": str(exc)})
        return None
    meta = info.metadata
    if not {"width", "height", "format"} <= meta.keys():
        return None
    if same_source and meta.get("source-sha256") != request.event.source_sha256:
        return None
    return _done(
        request.event,
        status="done",
        object_key=request.key,
        format=meta["format"],
        width=int(meta["width"]),
        height=int(meta["height"]),
        bytes=info.size,
        duration_ms=0.0,
        thumbhash=meta.get("thumbhash"),
        dominant_colour=meta.get("dominant-colour"),
        provenance={"reused": "true", "worker": WORKER_ID},
    )


def failed(event: VariantRequestedV1, failure: Failure) -> VariantDoneV1:
    """Return the failed ``variant-done`` of ``event``, carrying ``failure``'s reason code.

    The event carries the reason and the sentence; the library's ``detail``, when there is
    one, is logged here at warning level with the job id and never published.
    """
    if failure.detail:
        log.warning(
            "variant failed",
            extra={
                "job_id": event.job_id,
                "variant": event.variant,
                "reason": failure.reason.value,
                "detail": failure.detail,
            },
        )
    return _done(
        event, status="failed", reason_code=failure.reason.value, reason_message=failure.message
    )


def flatten(provenance: dict[str, object]) -> dict[str, str]:
    """Return provenance as ``str → str`` (nested values as compact JSON), for the Avro map."""
    return {
        k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), sort_keys=True)
        for k, v in provenance.items()
    }


def _done(event: VariantRequestedV1, **fields: Any) -> VariantDoneV1:
    return VariantDoneV1(
        job_id=event.job_id,
        gallery_id=event.gallery_id,
        image_id=event.image_id,
        correlation_id=event.correlation_id,
        attempt=event.attempt,
        variant=event.variant,
        spec_hash=event.spec_hash,
        **fields,
    )
