"""Faust wiring of the ingest stage.

::

    uploaded ──────┐
    image-deleted ─┼─► ingest.uploaded-by-gallery (key gallery_id) ─► IngestHandler ─► validated
    cataloged ─────┘

Three small agents forward each event, keyed by gallery_id, to one internal
topic, so every event of one gallery is handled by one worker, in order; that
worker owns the gallery's rows in changelog-backed tables — content hashes
(duplicates), image counts (the per-gallery limit), held manual-mode verdicts
and the jobs released / queued under ``max_concurrent_jobs`` — so all of them
stay exact with any number of ingest workers. See :mod:`darkroom_ingest.gate`.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import StreamT, TableT

from darkroom_common.gallery_settings import GallerySettingsCache, cache_for
from darkroom_common.stage import Emit, StageRunner
from darkroom_common.storage import ObjectStore, open_store
from darkroom_ingest.gate import GateState, IngestHandler
from darkroom_ingest.settings import IngestSettings
from darkroom_schemas import Event


class TableGalleryIndex:
    """:class:`~darkroom_ingest.gate.GalleryIndexWithDelete` on Faust tables.

    ``content``: ``"<gallery_id>/<sha256>"`` → image_id; ``counts``: gallery_id →
    images; ``by_image``: image_id → its ``content`` key (to forget it on delete).
    """

    def __init__(
        self,
        content: TableT[Any, Any],
        counts: TableT[Any, Any],
        by_image: TableT[Any, Any] | None = None,
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


def gallery_of(value: Any) -> str:
    """Repartition key: the event's gallery_id (undecodable values share one key)."""
    return value.gallery_id if isinstance(value, Event) else "_undecodable"


def attach(
    app: faust.App,
    settings: IngestSettings,
    store: ObjectStore | None = None,
    galleries: GallerySettingsCache | None = None,
) -> None:
    """Attach the forwarding agents, the ingest agent and its tables to ``app``."""
    runner = StageRunner(app, settings, "ingest")
    galleries = galleries or cache_for(app, settings)
    # JSON keys and values (the Faust default for tables).
    index = TableGalleryIndex(
        app.Table("ingest-content", default=None),
        app.Table("ingest-gallery-counts", default=int),
        app.Table("ingest-image-content", default=None),
    )
    state = GateState(
        held=app.Table("ingest-held", default=None),
        queued=app.Table("ingest-queued", default=None),
        active=app.Table("ingest-active", default=None),
    )
    # A registry topic, created with the others before the worker starts.
    by_gallery = app.topic(settings.topic("ingest.uploaded-by-gallery"))

    async def forward(value: Any) -> list[Emit]:
        await (await by_gallery.send(key=gallery_of(value).encode(), value=value))
        return []

    for source in ("uploaded", "image-deleted", "cataloged"):

        async def forwarder(stream: StreamT[Any]) -> None:
            async for event in stream.events():
                await runner.process(event, forward)

        app.agent(app.topic(settings.topic(source)), name=f"ingest-forward-{source}")(forwarder)

    @app.agent(by_gallery, name="ingest")
    async def ingest(stream: StreamT[Any]) -> None:
        objects = store or open_store(settings.storage)
        handler = IngestHandler(objects, index, state, galleries, settings)
        try:
            async for event in stream.events():
                await runner.process(event, handler)
        finally:
            if store is None:
                await objects.close()
