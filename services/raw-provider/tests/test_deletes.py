"""image-deleted in raw-provider: the image's masters leave the store, nothing else does."""

from __future__ import annotations

import pytest

from darkroom_common.objects import delete_image_objects, image_prefix
from darkroom_common.storage import FilesystemStore, ObjectStore
from darkroom_schemas import ImageDeletedV1

DELETE = ImageDeletedV1(job_id="i1", gallery_id="g1", image_id="i1", correlation_id="c1")


async def delete_masters(event: ImageDeletedV1, store: ObjectStore) -> int:
    """What this stage's delete agent does for ``event``."""
    return await delete_image_objects(store, "masters", event.gallery_id, event.image_id)


def masters_prefix(gallery_id: str, image_id: str) -> str:
    return image_prefix("masters", gallery_id, image_id)


KEEP = [
    "masters/g1/i10/master.jpg",  # a longer image id with the same start
    "masters/g2/i1/master.jpg",  # the same image id in another gallery
    "originals/g1/i1/a.cr2",  # not this stage's to delete
    "variants/g1/i1/thumb-0123456789abcdef.jpg",
]


async def check_delete(store: ObjectStore) -> None:
    for key in ["masters/g1/i1/master.jpg", "masters/g1/i1/extra/other.jpg", *KEEP]:
        await store.put(key, b"x")
    assert await delete_masters(DELETE, store) == 2
    assert [o.key async for o in store.list("masters/g1/i1/")] == []
    for key in KEEP:
        assert await store.exists(key), key
    assert await delete_masters(DELETE, store) == 0  # a redelivered event is harmless


def test_prefix_ends_with_a_slash():
    assert masters_prefix("g1", "i1") == "masters/g1/i1/"


async def test_delete_masters_on_the_filesystem(tmp_path):
    await check_delete(FilesystemStore(tmp_path / "store"))


@pytest.mark.s3
async def test_delete_masters_on_s3(s3_store):
    await check_delete(s3_store)
