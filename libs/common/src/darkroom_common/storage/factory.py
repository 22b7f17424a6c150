"""Choose the object store backend from settings."""

from __future__ import annotations

from darkroom_common.storage.base import ObjectStore
from darkroom_common.storage.config import StorageSettings
from darkroom_common.storage.local import FilesystemStore
from darkroom_common.storage.s3 import S3Store


def open_store(settings: StorageSettings) -> ObjectStore:
    """Return the store ``settings.backend`` names; nothing is contacted yet.

    ``"local"`` gives a :class:`FilesystemStore` on ``settings.root``; ``"s3"`` an
    :class:`S3Store` on ``settings.bucket`` (its client connects on first use;
    call ``await store.ensure_bucket()`` to create the bucket).

    Raises:
        ConfigurationError: the settings name no usable backend.
    """
    if settings.backend == "local":
        return FilesystemStore(settings.root)
    return S3Store(settings)
