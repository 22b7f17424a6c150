"""The three forwarders repartition their own events by gallery_id and refuse any other kind."""

from __future__ import annotations

import pytest

from darkroom_common.errors import PoisonEvent
from darkroom_ingest.routes import BY_GALLERY, FORWARDED, forwarder
from darkroom_runtime import Emit
from darkroom_schemas import CatalogedV1, ImageDeletedV1, UploadedV1, utcnow
from darkroom_schemas.topics import TOPICS, stage

IDS = {"job_id": "i1", "gallery_id": "g1", "image_id": "i1", "correlation_id": "c"}
EVENTS = {
    "uploaded": UploadedV1(**IDS, object_key="originals/g1/i1/a.jpg", filename="a.jpg", size_bytes=1),
    "image-deleted": ImageDeletedV1(**IDS),
    "cataloged": CatalogedV1(**IDS, status="complete", completed_at=utcnow()),
}  # fmt: skip


def test_the_forwarded_topics_are_the_registry_routes_to_the_repartition():
    routes = stage("ingest").routes
    assert {r.topic for r in routes if r.emits == (BY_GALLERY,)} == set(FORWARDED)


@pytest.mark.parametrize("topic", FORWARDED)
async def test_each_event_goes_to_the_repartition_keyed_by_its_gallery(topic):
    event = EVENTS[topic]
    assert await forwarder(topic)(event) == [Emit(BY_GALLERY, event)]
    assert TOPICS[BY_GALLERY].key_of(event) == b"g1"


@pytest.mark.parametrize("topic", FORWARDED)
async def test_an_event_of_another_topic_is_dead_lettered_where_it_was_read(topic):
    stray = next(e for t, e in EVENTS.items() if t != topic)
    with pytest.raises(PoisonEvent) as info:
        await forwarder(topic)(stray)
    assert info.value.reason_code == "unexpected_event"
