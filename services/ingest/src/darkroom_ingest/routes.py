"""The ingest stage's routes (see ``darkroom topics graph``).

::

    uploaded ──────┐
    image-deleted ─┼─► ingest.uploaded-by-gallery (key gallery_id) ─► IngestHandler ─► validated
    cataloged ─────┘

Three forwarders send each event, keyed by gallery_id, to one internal topic, so
every event of one gallery is handled by one worker, in order; that worker owns the
gallery's rows in the stage's tables — content hashes (duplicates), image counts (the
per-gallery limit), held manual-mode verdicts and the jobs released / queued under
``max_concurrent_jobs`` — so all of them stay exact with any number of ingest
workers. See :mod:`darkroom_ingest.gate`.
"""

from __future__ import annotations

from typing import Any

from darkroom_common.errors import PoisonEvent
from darkroom_common.ports import Ports
from darkroom_ingest.gate import GalleryIndexWithDelete, GateState, IngestHandler
from darkroom_ingest.settings import IngestSettings
from darkroom_runtime import Emit, Handler, Route
from darkroom_schemas.topics import TOPICS

BY_GALLERY = "ingest.uploaded-by-gallery"
"""The repartition topic; its route's lane is the only writer of the stage's tables."""

FORWARDED = ("uploaded", "image-deleted", "cataloged")
"""The topics whose events are repartitioned by gallery_id."""


def forwarder(topic: str) -> Handler:
    """Return the handler that repartitions registry topic ``topic``'s events by gallery_id.

    The handler returns one ``Emit(BY_GALLERY, event)``; the registry keys that topic
    by the event's gallery_id.

    Raises (in the handler):
        PoisonEvent: a decodable event of a kind ``topic`` does not carry
            (``unexpected_event``; dead-lettered where it was read).
    """
    kinds = TOPICS[topic].schemas

    async def forward(event: Any) -> list[Emit]:
        if not isinstance(event, kinds):
            raise PoisonEvent(
                f"{type(event).__name__} is not an event of {topic}",
                reason_code="unexpected_event",
            )
        return [Emit(BY_GALLERY, event)]

    forward.__name__ = f"forward_{topic.replace('-', '_')}"
    return forward


def routes(
    settings: IngestSettings, ports: Ports, index: GalleryIndexWithDelete, state: GateState
) -> dict[str, Route]:
    """Return the stage's handlers by consumed topic.

    Args:
        index: the content hashes and image counts (the stage's tables).
        state: the held, queued and active jobs (the stage's tables).
    """
    gate = IngestHandler(ports.store, index, state, ports.gallery_settings, settings, ports.metrics)
    return {
        **{topic: Route.each(forwarder(topic)) for topic in FORWARDED},
        BY_GALLERY: Route.each(gate),
    }
