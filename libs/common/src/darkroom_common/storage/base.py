"""The object store port: one async interface, several backends.

Handlers receive an :class:`ObjectStore` and never know whether it writes to a
local folder (:class:`~darkroom_common.storage.FilesystemStore`) or to an
S3-compatible server (:class:`~darkroom_common.storage.S3Store`). Both pass
the same contract tests (``libs/common/tests/storage/test_contract.py``).
"""

from __future__ import annotations

import abc
import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import IO, Protocol, Self, TypeAlias, runtime_checkable

from darkroom_common.errors import ObjectNotFound
from darkroom_common.storage.errors import InvalidObject

DEFAULT_CHUNK_BYTES = 1024 * 1024
"""Size of the chunks :meth:`ObjectStore.get` yields and uploads are read in (1 MiB)."""

DEFAULT_CONTENT_TYPE = "application/octet-stream"
"""Content type stored when ``put`` is given none (RFC 2046 §4.5.1)."""

MAX_METADATA_BYTES = 2048
"""Limit on the sum of user-metadata key and value lengths (the S3 limit, 2 KB)."""

_METADATA_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]*")
_CONTENT_TYPE = re.compile(
    r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+(;[\x20-\x7e]*)?"
)


@runtime_checkable
class SupportsRead(Protocol):
    """A binary file-like object: ``read(n)`` returns up to ``n`` bytes, ``b""`` at the end."""

    def read(self, n: int = -1, /) -> bytes: ...


PutData: TypeAlias = (
    bytes | bytearray | memoryview | AsyncIterable[bytes] | SupportsRead | IO[bytes]
)
"""What :meth:`ObjectStore.put` accepts: a buffer, an async iterable of byte chunks,
or a binary file object (read in a worker thread, chunk by chunk)."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What the store knows about one object.

    Attributes:
        key: the object key (see :func:`~darkroom_common.storage.validate_key`).
        size: length of the object in bytes.
        etag: entity tag without quotes. For an object written in one request it
            is the hex MD5 of the bytes on both backends; for an S3 multipart
            upload it is S3's ``<md5-of-part-md5s>-<parts>`` form.
        content_type: the stored ``Content-Type``; ``None`` in results of
            :meth:`ObjectStore.list`, which does not carry it (use ``head``).
        last_modified: when the object was written, timezone-aware UTC.
        metadata: user metadata (S3 ``x-amz-meta-*``), lower-case keys; empty in
            results of :meth:`ObjectStore.list`.
    """

    key: str
    size: int
    etag: str
    content_type: str | None
    last_modified: datetime
    metadata: Mapping[str, str] = field(default_factory=dict)


def validate_content_type(content_type: str | None) -> str:
    """Return ``content_type`` (or :data:`DEFAULT_CONTENT_TYPE` for ``None``) if it is a
    well-formed ``type/subtype[; params]`` media type (RFC 9110 §8.3.1).

    Raises:
        InvalidObject: malformed, non-ASCII or longer than 255 characters.
    """
    if content_type is None:
        return DEFAULT_CONTENT_TYPE
    if len(content_type) > 255 or not _CONTENT_TYPE.fullmatch(content_type):
        raise InvalidObject(
            f"content type {content_type!r} is not a 'type/subtype' media type",
            reason_code="invalid_content_type",
        )
    return content_type


def validate_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Return a copy of user metadata that both backends store unchanged.

    Keys are 1-128 characters of ``[a-z0-9-]`` starting with a letter or digit
    (S3 lower-cases ``x-amz-meta-*`` names, and some proxies drop ``_``);
    values are printable ASCII without leading or trailing spaces (they travel
    as HTTP header values); keys plus values total at most
    :data:`MAX_METADATA_BYTES`.

    Raises:
        InvalidObject: a key or value breaks these rules, or the total is too large.
    """
    if not metadata:
        return {}
    out: dict[str, str] = {}
    total = 0
    for name, value in metadata.items():
        if not isinstance(name, str) or not _METADATA_KEY.fullmatch(name):
            raise InvalidObject(
                f"metadata key {name!r} must be 1-128 characters of [a-z0-9-]",
                reason_code="invalid_metadata",
            )
        if (
            not isinstance(value, str)
            or not _HEADER_VALUE.fullmatch(value)
            or value != value.strip(" ")
        ):
            raise InvalidObject(
                f"metadata value for {name!r} must be printable ASCII without edge spaces",
                reason_code="invalid_metadata",
            )
        total += len(name) + len(value)
        out[name] = value
    if total > MAX_METADATA_BYTES:
        raise InvalidObject(
            f"metadata is {total} bytes; the limit is {MAX_METADATA_BYTES}",
            reason_code="invalid_metadata",
        )
    return out


async def iter_chunks(data: PutData, chunk_size: int = DEFAULT_CHUNK_BYTES) -> AsyncIterator[bytes]:
    """Yield ``data`` as non-empty ``bytes`` chunks without reading it all into memory.

    Buffers are sliced into ``chunk_size`` pieces; file objects are read
    ``chunk_size`` bytes at a time in a worker thread; async iterables pass
    through (empty chunks dropped).

    Raises:
        InvalidObject: ``data`` is none of the accepted kinds, or an async
            iterable yields something that is not bytes-like.
        Exception: whatever the source itself raises, unchanged.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data).cast("B")
        for start in range(0, len(view), chunk_size):
            yield bytes(view[start : start + chunk_size])
        return
    if isinstance(data, AsyncIterable):
        async for chunk in data:
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise InvalidObject(
                    f"an object stream yielded {type(chunk).__name__}, not bytes",
                    reason_code="invalid_stream",
                )
            if len(chunk):
                yield bytes(chunk)
        return
    if isinstance(data, SupportsRead):
        while chunk := await asyncio.to_thread(data.read, chunk_size):
            yield bytes(chunk)
        return
    raise InvalidObject(
        f"cannot store a {type(data).__name__}; pass bytes, an async iterable of bytes "
        "or a binary file object",
        reason_code="invalid_stream",
    )


class ObjectStore(abc.ABC):
    """An async object store holding byte objects under validated keys.

    Every key argument goes through :func:`~darkroom_common.storage.validate_key`
    first (``InvalidKey`` otherwise). Use as ``async with store: ...`` or call
    :meth:`close` when done.

    Failures: ``ObjectNotFound`` (no such key), ``InvalidKey``,
    ``InvalidObject`` (bad metadata/content type), ``StorageUnavailable``
    (retriable: the backend is down, slow or throttling),
    ``StorageAccessDenied`` and ``UnsupportedOperation`` (permanent).
    """

    @abc.abstractmethod
    async def put(
        self,
        key: str,
        data: PutData,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Store ``data`` under ``key``, replacing any object there, and describe it.

        The upload streams: only a bounded buffer is held in memory (S3: one
        multipart part). It is atomic: readers see the old object or the whole
        new one, and if ``data`` raises or the task is cancelled midway no new
        object becomes visible (the source's exception propagates unchanged).

        Args:
            key: the object key.
            data: see :data:`PutData`.
            content_type: media type; :data:`DEFAULT_CONTENT_TYPE` when ``None``.
            metadata: user metadata, see :func:`validate_metadata`.

        Raises:
            InvalidKey, InvalidObject, StorageUnavailable, StorageAccessDenied.
        """

    @abc.abstractmethod
    def get(
        self, key: str, *, chunk_size: int = DEFAULT_CHUNK_BYTES
    ) -> AsyncGenerator[bytes, None]:
        """Stream the object's bytes: ``async for chunk in store.get(key)``.

        Chunks are at most ``chunk_size`` bytes. The lookup happens on the first
        iteration, so ``ObjectNotFound`` is raised there. A generator left
        early releases its file or connection when it is closed; wrap it in
        ``contextlib.aclosing`` for prompt release rather than at garbage collection.

        Raises:
            InvalidKey, ObjectNotFound, StorageUnavailable, StorageAccessDenied.
        """

    async def get_bytes(self, key: str) -> bytes:
        """Return the whole object in memory; for small objects only (use :meth:`get`).

        Raises:
            InvalidKey, ObjectNotFound, StorageUnavailable, StorageAccessDenied.
        """
        parts = [chunk async for chunk in self.get(key)]
        return b"".join(parts)

    @abc.abstractmethod
    async def head(self, key: str) -> ObjectInfo:
        """Describe the object under ``key`` without reading its bytes.

        Raises:
            InvalidKey, ObjectNotFound, StorageUnavailable, StorageAccessDenied.
        """

    async def exists(self, key: str) -> bool:
        """Return whether an object is stored under ``key``.

        Raises:
            InvalidKey, StorageUnavailable, StorageAccessDenied.
        """
        try:
            await self.head(key)
        except ObjectNotFound:
            return False
        return True

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object under ``key``; deleting a missing key is not an error.

        Raises:
            InvalidKey, StorageUnavailable, StorageAccessDenied.
        """

    @abc.abstractmethod
    def list(self, prefix: str = "", *, page_size: int = 1000) -> AsyncGenerator[ObjectInfo, None]:
        """Yield every object whose key starts with ``prefix``, in UTF-8 byte order of keys.

        ``prefix`` is ``""`` or a key with an optional trailing ``/``; its last
        segment may be partial. Results carry key, size, etag and last_modified;
        ``content_type`` is ``None`` and ``metadata`` empty (use :meth:`head`).
        ``page_size`` (1-1000) is how many keys one request fetches on S3.

        Raises:
            InvalidKey, StorageUnavailable, StorageAccessDenied.
        """

    @abc.abstractmethod
    async def presign_put(
        self, key: str, *, expires_s: int | None = None, content_type: str | None = None
    ) -> str:
        """Return a URL that lets its holder ``PUT`` the object for ``expires_s`` seconds.

        With ``content_type`` the upload must send exactly that ``Content-Type``
        (it is part of the signature). SigV4 query signing (AWS Signature
        Version 4, "Authenticating Requests: Using Query Parameters").

        Raises:
            InvalidKey, UnsupportedOperation (the filesystem store),
            InvalidObject (``expires_s`` outside 1..604800).
        """

    @abc.abstractmethod
    async def presign_get(self, key: str, *, expires_s: int | None = None) -> str:
        """Return a URL that lets its holder ``GET`` the object for ``expires_s`` seconds.

        Raises:
            InvalidKey, UnsupportedOperation (the filesystem store),
            InvalidObject (``expires_s`` outside 1..604800).
        """

    async def close(self) -> None:  # noqa: B027 - backends without resources need no close
        """Release connections and other resources; the store is unusable afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _check_page_size(page_size: int) -> int:
    if not 1 <= page_size <= 1000:
        raise InvalidObject(
            f"page_size must be 1..1000, not {page_size}", reason_code="invalid_argument"
        )
    return page_size


__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_CONTENT_TYPE",
    "MAX_METADATA_BYTES",
    "ObjectInfo",
    "ObjectStore",
    "PutData",
    "SupportsRead",
    "iter_chunks",
    "validate_content_type",
    "validate_metadata",
]
