"""Deleting what the variants stage wrote for an image: everything under ``variants/<gallery>/<image>/``."""

from __future__ import annotations

from darkroom_common.storage import ObjectStore, join_key
from darkroom_schemas import ImageDeletedV1


def variants_prefix(gallery_id: str, image_id: str) -> str:
    """Return ``variants/<gallery_id>/<image_id>/`` (the trailing ``/`` keeps ``i1`` from matching ``i10``)."""
    return join_key("variants", gallery_id, image_id) + "/"


async def delete_variants(event: ImageDeletedV1, store: ObjectStore) -> int:
    """Delete every rendered variant of the image, whatever its spec; return how many were removed.

    Idempotent: a redelivered event finds nothing and returns 0.

    Raises:
        InvalidKey: malformed ids; StorageUnavailable: the store failed (retriable).
    """
    keys = [
        info.key async for info in store.list(variants_prefix(event.gallery_id, event.image_id))
    ]
    for key in keys:
        await store.delete(key)
    return len(keys)
