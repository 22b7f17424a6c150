"""image-deleted in variants: every variant of the image leaves the store, nothing else does."""

from __future__ import annotations

import pytest

from darkroom_common.objects import delete_image_objects, image_prefix
from darkroom_common.service import missing_handlers
from darkroom_common.storage import FilesystemStore, ObjectStore
from darkroom_schemas import ImageDeletedV1
from darkroom_schemas.topics import stage
from darkroom_variants.app import build_app
from darkroom_variants.settings import VariantsSettings

DELETE = ImageDeletedV1(job_id="i1", gallery_id="g1", image_id="i1", correlation_id="c1")


async def delete_variants(event: ImageDeletedV1, store: ObjectStore) -> int:
    """What this stage's delete agent does for ``event``."""
    return await delete_image_objects(store, "variants", event.gallery_id, event.image_id)


def variants_prefix(gallery_id: str, image_id: str) -> str:
    return image_prefix("variants", gallery_id, image_id)


GONE = [
    "variants/g1/i1/thumb-0123456789abcdef.jpg",
    "variants/g1/i1/thumb-fedcba9876543210.jpg",  # an older spec of the same variant
    "variants/g1/i1/large-0123456789abcdef.avif",
]
KEEP = [
    "variants/g1/i10/thumb-0123456789abcdef.jpg",  # a longer image id with the same start
    "variants/g2/i1/thumb-0123456789abcdef.jpg",  # the same image id in another gallery
    "masters/g1/i1/master.jpg",  # not this stage's to delete
    "originals/g1/i1/a.jpg",
]


async def check_delete(store: ObjectStore) -> None:
    for key in [*GONE, *KEEP]:
        await store.put(key, b"x")
    assert await delete_variants(DELETE, store) == len(GONE)
    assert [o.key async for o in store.list("variants/g1/i1/")] == []
    for key in KEEP:
        assert await store.exists(key), key
    assert await delete_variants(DELETE, store) == 0  # a redelivered event is harmless


def test_prefix_ends_with_a_slash():
    assert variants_prefix("g1", "i1") == "variants/g1/i1/"


async def test_delete_variants_on_the_filesystem(tmp_path):
    await check_delete(FilesystemStore(tmp_path / "store"))


@pytest.mark.s3
async def test_delete_variants_on_s3(s3_store):
    await check_delete(s3_store)


@pytest.mark.s3
async def test_delete_variants_on_s3_past_one_listing_page(s3_store):
    keys = [f"variants/g1/i1/v{n:04d}-0123456789abcdef.jpg" for n in range(1005)]
    for key in keys:
        await s3_store.put(key, b"x")
    assert await delete_variants(DELETE, s3_store) == len(keys)
    assert [o.key async for o in s3_store.list("variants/g1/i1/")] == []


def test_every_consumed_topic_has_an_agent(tmp_path):
    settings = VariantsSettings(topic_prefix="wired.", data_dir=tmp_path)
    app = build_app(settings)
    assert "image-deleted" in stage("variants").consumes
    assert missing_handlers(app, "variants", settings) == []
