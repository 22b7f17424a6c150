"""Errors specific to the object store, beside those in :mod:`darkroom_common.errors`.

::

    PermanentError
    ├── StorageAccessDenied    the store refused the credentials or the signature (403)
    ├── UnsupportedOperation   the backend cannot do this (presigned URLs on the filesystem)
    └── InvalidObject          bad metadata / content type, or too large for the part size

The rest of the store's failures use the shared tree: ``InvalidKey``,
``ObjectNotFound``, ``StorageUnavailable`` (retriable) and ``ConfigurationError``.
"""

from __future__ import annotations

from darkroom_common.errors import PermanentError


class StorageAccessDenied(PermanentError):
    """The object store refused the request: wrong credentials, bad signature or no permission."""

    default_reason = "storage_access_denied"


class UnsupportedOperation(PermanentError):
    """The backend cannot perform this operation (e.g. presigning on the filesystem store)."""

    default_reason = "unsupported_operation"


class InvalidObject(PermanentError):
    """The object's metadata, content type or size is not acceptable to the store."""

    default_reason = "invalid_object"
