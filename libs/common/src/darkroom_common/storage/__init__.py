"""Object storage: one async port (:class:`ObjectStore`), a filesystem and an S3 backend.

::

    from darkroom_common.storage import StorageSettings, join_key, open_store

    async with open_store(settings.storage) as store:
        info = await store.put(join_key("variants", image_id, "w1024.avif"), data,
                               content_type="image/avif")
        async for chunk in store.get(info.key):
            ...
"""

from darkroom_common.storage.base import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_CONTENT_TYPE,
    MAX_METADATA_BYTES,
    ObjectInfo,
    ObjectStore,
    PutData,
    SupportsRead,
    iter_chunks,
    validate_content_type,
    validate_metadata,
)
from darkroom_common.storage.config import MIN_PART_BYTES, StorageSettings
from darkroom_common.storage.errors import InvalidObject, StorageAccessDenied, UnsupportedOperation
from darkroom_common.storage.factory import open_store
from darkroom_common.storage.keys import MAX_KEY_BYTES, join_key, validate_key, validate_prefix
from darkroom_common.storage.local import FilesystemStore
from darkroom_common.storage.s3 import S3Store

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_CONTENT_TYPE",
    "MAX_KEY_BYTES",
    "MAX_METADATA_BYTES",
    "MIN_PART_BYTES",
    "FilesystemStore",
    "InvalidObject",
    "ObjectInfo",
    "ObjectStore",
    "PutData",
    "S3Store",
    "StorageAccessDenied",
    "StorageSettings",
    "SupportsRead",
    "UnsupportedOperation",
    "iter_chunks",
    "join_key",
    "open_store",
    "validate_content_type",
    "validate_key",
    "validate_metadata",
    "validate_prefix",
]
