"""Deleting what raw-provider wrote for an image: everything under ``masters/<gallery>/<image>/``."""

from __future__ import annotations

from darkroom_common.storage import ObjectStore, join_key
from darkroom_schemas import ImageDeletedV1


def masters_prefix(gallery_id: str, image_id: str) -> str:
    """Return ``masters/<gallery_id>/<image_id>/`` (the trailing ``/`` keeps ``i1`` from matching ``i10``)."""
    return join_key("masters", gallery_id, image_id) + "/"


async def delete_prefix(store: ObjectStore, prefix: str) -> int:
    """Delete every object whose key starts with ``prefix``; return how many there were.

    Idempotent: a second call finds nothing and returns 0.

    Raises:
        InvalidKey: ``prefix`` is malformed; StorageUnavailable: the store failed (retriable).
    """
    keys = [info.key async for info in store.list(prefix)]
    for key in keys:
        await store.delete(key)
    return len(keys)


async def delete_masters(event: ImageDeletedV1, store: ObjectStore) -> int:
    """Delete the image's developed masters; return how many objects were removed."""
    return await delete_prefix(store, masters_prefix(event.gallery_id, event.image_id))
