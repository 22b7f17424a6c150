"""Faust wiring of the ingest stage: ``uploaded`` → (by gallery) → ``validated``.

Uploads are repartitioned by gallery_id (Faust ``group_by``) so every upload of
one gallery is validated by one worker, in order; that worker owns the
gallery's rows in two changelog-backed tables — content hashes (duplicate
detection) and image counts (the per-gallery limit) — so both stay exact with
any number of ingest workers.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import StreamT, TableT

from darkroom_common.stage import Emit, StageRunner
from darkroom_common.storage import ObjectStore, open_store
from darkroom_ingest.settings import IngestSettings
from darkroom_ingest.validate import validate_upload
from darkroom_schemas import Event, UploadedV1


class TableGalleryIndex:
    """:class:`~darkroom_ingest.validate.GalleryIndex` on two Faust tables.

    ``content``: ``"<gallery_id>/<sha256>"`` → image_id; ``counts``: gallery_id → images.
    """

    def __init__(self, content: TableT[Any, Any], counts: TableT[Any, Any]) -> None:
        self.content = content
        self.counts = counts

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


def gallery_of(value: Any) -> str:
    """Repartition key: the event's gallery_id (undecodable values share one key)."""
    return value.gallery_id if isinstance(value, Event) else "_undecodable"


def attach(app: faust.App, settings: IngestSettings, store: ObjectStore | None = None) -> None:
    """Attach the ingest agent and its tables to ``app``."""
    runner = StageRunner(app, settings, "ingest")
    content = app.Table("ingest-content", default=None)  # JSON keys and values (Faust default)
    counts = app.Table("ingest-gallery-counts", default=int)
    index = TableGalleryIndex(content, counts)
    uploaded = app.topic(settings.topic("uploaded"))
    # A registry topic, created with the others before the worker starts.
    by_gallery = app.topic(settings.topic("ingest.uploaded-by-gallery"))

    @app.agent(uploaded, name="ingest")
    async def ingest(stream: StreamT[Any]) -> None:
        objects = store or open_store(settings.storage)

        async def handle(upload: Any) -> list[Emit]:
            if not isinstance(upload, UploadedV1):
                raise TypeError(f"expected UploadedV1 on {uploaded}, got {type(upload).__name__}")
            verdict = await validate_upload(upload, store=objects, index=index, settings=settings)
            return [Emit("validated", verdict)]

        try:
            async for event in stream.group_by(
                gallery_of, name="by-gallery", topic=by_gallery
            ).events():
                await runner.process(event, handle)
        finally:
            if store is None:
                await objects.close()
