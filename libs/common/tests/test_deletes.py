"""Deleting an image's objects of one kind: exactly its prefix, idempotent, on both backends."""

from __future__ import annotations

import pytest

from darkroom_common.objects import delete_image_objects, image_prefix
from darkroom_common.storage import FilesystemStore, ObjectStore

KINDS = ["originals", "masters", "variants"]


def keys(kind: str) -> tuple[list[str], list[str]]:
    gone = [f"{kind}/g1/i1/a-0123456789abcdef.jpg", f"{kind}/g1/i1/a-fedcba9876543210.webp"]
    keep = [
        f"{kind}/g1/i10/a.jpg",  # a longer image id with the same start
        f"{kind}/g2/i1/a.jpg",  # the same image id in another gallery
        *(f"{other}/g1/i1/a.jpg" for other in KINDS if other != kind),  # another stage's objects
    ]
    return gone, keep


async def check_delete(store: ObjectStore, kind: str) -> None:
    gone, keep = keys(kind)
    for key in [*gone, *keep]:
        await store.put(key, b"x")
    assert await delete_image_objects(store, kind, "g1", "i1") == len(gone)  # type: ignore[arg-type]
    assert [o.key async for o in store.list(f"{kind}/g1/i1/")] == []
    for key in keep:
        assert await store.exists(key), key
    assert await delete_image_objects(store, kind, "g1", "i1") == 0  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
def test_prefix_ends_with_a_slash(kind):
    assert image_prefix(kind, "g1", "i1") == f"{kind}/g1/i1/"


@pytest.mark.parametrize("kind", KINDS)
async def test_delete_on_the_filesystem(tmp_path, kind):
    await check_delete(FilesystemStore(tmp_path / "store"), kind)


@pytest.mark.s3
@pytest.mark.parametrize("kind", KINDS)
async def test_delete_on_s3(s3_store, kind):
    await check_delete(s3_store, kind)


@pytest.mark.s3
async def test_delete_on_s3_past_one_listing_page(s3_store):
    keys = [f"variants/g1/i1/v{n:04d}-0123456789abcdef.jpg" for n in range(1005)]
    for key in keys:
        await s3_store.put(key, b"x")
    assert await delete_image_objects(s3_store, "variants", "g1", "i1") == len(keys)
    assert [o.key async for o in s3_store.list("variants/g1/i1/")] == []
