"""The filesystem backend: objects as files under one root folder.

Layout under ``root``::

    objects/<key>        the object's bytes
    meta/<key>.json      sidecar: content type, user metadata, etag and the
                         inode/size/mtime of the data file it describes

A write goes to a temporary file in the target's own folder (so
``os.replace`` is an atomic rename on one filesystem), is fsynced, and then
renamed over the key. Temporary names contain a backslash, which no valid key
can, so they never collide with an object and :meth:`FilesystemStore.list`
skips them. A sidecar whose inode/size/mtime do not match its data file (a
crash between the two renames) is ignored: the object then reads as
``application/octet-stream`` with no metadata and an etag computed from its bytes.

Keys map to paths under ``objects/`` and are checked after resolving
symlinks, so no key reaches outside the root. Two keys where one is a folder of
the other (``a`` and ``a/b``) cannot coexist here, unlike on S3: the second
``put`` raises ``InvalidKey``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from darkroom_common.errors import InvalidKey, ObjectNotFound, StorageUnavailable
from darkroom_common.storage.base import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    ObjectStore,
    PutData,
    _check_page_size,
    iter_chunks,
    validate_content_type,
    validate_metadata,
)
from darkroom_common.storage.errors import StorageAccessDenied, UnsupportedOperation
from darkroom_common.storage.keys import validate_key, validate_prefix

_TMP_MARK = "\\"
_SIDECAR_VERSION = 1
_WRITE_BUFFER_BYTES = DEFAULT_CHUNK_BYTES


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    is_dir: bool
    info: ObjectInfo | None


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while block := f.read(DEFAULT_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


class FilesystemStore(ObjectStore):
    """An :class:`ObjectStore` keeping objects as files under ``root``.

    All file I/O runs in worker threads (``asyncio.to_thread``). Writes are
    atomic and durable (fsync of file and folder) unless ``fsync=False``.

    Args:
        root: the store's folder; created on the first write.
        fsync: flush data to disk before an object becomes visible; turn off
            only for throwaway stores.

    Raises:
        StorageUnavailable: wraps unexpected ``OSError`` (disk full, I/O error,
            permission denied), as a local disk is this backend's server.
    """

    def __init__(self, root: Path | str, *, fsync: bool = True) -> None:
        self.root = Path(root).absolute()
        self._objects = self.root / "objects"
        self._meta = self.root / "meta"
        self._fsync = fsync

    def __repr__(self) -> str:
        return f"FilesystemStore(root={str(self.root)!r})"

    def local_path(self, key: str) -> Path:
        """Return the file holding object ``key`` (it may not exist), for local viewers.

        Raises:
            InvalidKey: the key is malformed or resolves outside the store root.
        """
        return self._data_path(key)

    def _data_path(self, key: str) -> Path:
        """Map a key to its data path; runs in a worker thread (it resolves symlinks)."""
        validate_key(key)
        objects = self._objects.resolve()
        path = objects / key
        resolved = path.resolve()
        if resolved != path or not resolved.is_relative_to(objects):
            # A symlink somewhere on the way: refuse rather than follow it out of the root.
            raise InvalidKey(f"object key {key!r} resolves outside the store root")
        return path

    def _meta_path(self, key: str) -> Path:
        return self._meta.resolve() / f"{key}.json"

    # -- writing --------------------------------------------------------------

    def _open_temp(self, key: str) -> tuple[Path, Path, BinaryIO]:
        target = self._data_path(key)
        # The root's own folders failing to appear is a broken store, not a bad key.
        self._objects.mkdir(parents=True, exist_ok=True)
        self._meta.mkdir(parents=True, exist_ok=True)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise InvalidKey(
                f"object key {key!r} needs a folder where an object is stored "
                "(the filesystem store cannot hold both 'a' and 'a/b')"
            ) from exc
        if target.is_dir():
            raise InvalidKey(
                f"object key {key!r} names a folder of other objects "
                "(the filesystem store cannot hold both 'a' and 'a/b')"
            )
        temp = target.parent / f"{_TMP_MARK}partial-{secrets.token_hex(8)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        return target, temp, os.fdopen(fd, "wb")

    @staticmethod
    def _write(f: BinaryIO, block: bytes, digest: Any) -> None:
        f.write(block)
        digest.update(block)

    def _commit(
        self,
        key: str,
        target: Path,
        temp: Path,
        f: BinaryIO,
        etag: str,
        content_type: str,
        metadata: dict[str, str],
    ) -> ObjectInfo:
        f.flush()
        if self._fsync:
            os.fsync(f.fileno())
        st = os.fstat(f.fileno())
        f.close()
        sidecar = self._meta_path(key)
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        side_temp = sidecar.parent / f"{_TMP_MARK}partial-{secrets.token_hex(8)}"
        record = {
            "version": _SIDECAR_VERSION,
            "content_type": content_type,
            "metadata": metadata,
            "etag": etag,
            "size": st.st_size,
            "ino": st.st_ino,
            "mtime_ns": st.st_mtime_ns,
        }
        try:
            with side_temp.open("w", encoding="utf-8") as sf:
                json.dump(record, sf)
                sf.flush()
                if self._fsync:
                    os.fsync(sf.fileno())
            try:
                os.replace(temp, target)
            except IsADirectoryError as exc:
                raise InvalidKey(
                    f"object key {key!r} names a folder of other objects "
                    "(the filesystem store cannot hold both 'a' and 'a/b')"
                ) from exc
            os.replace(side_temp, sidecar)
        finally:
            side_temp.unlink(missing_ok=True)
        if self._fsync:
            _fsync_dir(target.parent)
            _fsync_dir(sidecar.parent)
        return ObjectInfo(
            key=key,
            size=st.st_size,
            etag=etag,
            content_type=content_type,
            last_modified=_utc(st.st_mtime),
            metadata=dict(metadata),
        )

    async def put(
        self,
        key: str,
        data: PutData,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Write ``data`` to a temporary file beside the target, fsync, rename over ``key``.

        See :meth:`ObjectStore.put`. Also raises ``InvalidKey`` when ``key``
        collides with a folder of other keys or would resolve outside the root.
        """
        validate_key(key)
        content_type = validate_content_type(content_type)
        meta = validate_metadata(metadata)
        with self._os_errors(key):
            target, temp, f = await asyncio.to_thread(self._open_temp, key)
        committed = False
        try:
            digest = hashlib.md5(usedforsecurity=False)
            pending: list[bytes] = []
            pending_bytes = 0
            async for chunk in iter_chunks(data):
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes >= _WRITE_BUFFER_BYTES:
                    block = b"".join(pending)
                    pending, pending_bytes = [], 0
                    with self._os_errors(key):
                        await asyncio.to_thread(self._write, f, block, digest)
            with self._os_errors(key):
                if pending:
                    await asyncio.to_thread(self._write, f, b"".join(pending), digest)
                info = await asyncio.to_thread(
                    self._commit, key, target, temp, f, digest.hexdigest(), content_type, meta
                )
            committed = True
            return info
        finally:
            if not committed:
                # Runs on errors and cancellation alike; plain syscalls, so no await is
                # needed (a second cancellation cannot interrupt the cleanup).
                f.close()
                temp.unlink(missing_ok=True)

    # -- reading --------------------------------------------------------------

    def _read_sidecar(self, key: str, st: os.stat_result) -> dict[str, Any] | None:
        try:
            with self._meta_path(key).open(encoding="utf-8") as sf:
                record = json.load(sf)
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
            return None
        if not isinstance(record, dict) or (
            record.get("version"),
            record.get("ino"),
            record.get("size"),
            record.get("mtime_ns"),
        ) != (_SIDECAR_VERSION, st.st_ino, st.st_size, st.st_mtime_ns):
            return None
        return record

    def _stat_object(self, key: str, path: Path) -> os.stat_result:
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(f"no object under key {key!r}") from exc
        if not path.is_file():
            raise ObjectNotFound(f"no object under key {key!r}")
        return st

    def _info(self, key: str, path: Path, *, full: bool) -> ObjectInfo:
        st = self._stat_object(key, path)
        record = self._read_sidecar(key, st)
        if record is None:
            return ObjectInfo(
                key=key,
                size=st.st_size,
                etag=_md5_file(path),
                content_type=DEFAULT_CONTENT_TYPE if full else None,
                last_modified=_utc(st.st_mtime),
                metadata={},
            )
        return ObjectInfo(
            key=key,
            size=st.st_size,
            etag=str(record["etag"]),
            content_type=str(record["content_type"]) if full else None,
            last_modified=_utc(st.st_mtime),
            metadata=dict(record["metadata"]) if full else {},
        )

    def _head_sync(self, key: str) -> ObjectInfo:
        return self._info(key, self._data_path(key), full=True)

    async def head(self, key: str) -> ObjectInfo:
        """See :meth:`ObjectStore.head`."""
        validate_key(key)
        with self._os_errors(key):
            return await asyncio.to_thread(self._head_sync, key)

    def _open_read(self, key: str) -> BinaryIO:
        path = self._data_path(key)
        try:
            f = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFound(f"no object under key {key!r}") from exc
        return f

    async def get(
        self, key: str, *, chunk_size: int = DEFAULT_CHUNK_BYTES
    ) -> AsyncGenerator[bytes, None]:
        """See :meth:`ObjectStore.get`; each chunk is read in a worker thread."""
        validate_key(key)
        with self._os_errors(key):
            f = await asyncio.to_thread(self._open_read, key)
        try:
            while True:
                with self._os_errors(key):
                    chunk = await asyncio.to_thread(f.read, chunk_size)
                if not chunk:
                    return
                yield chunk
        finally:
            f.close()

    # -- deleting -------------------------------------------------------------

    def _prune(self, folder: Path, stop: Path) -> None:
        """Remove now-empty folders from ``folder`` up to (not including) ``stop``."""
        while folder != stop and folder.is_relative_to(stop):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _delete_sync(self, key: str) -> None:
        path = self._data_path(key)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
            if path.is_dir():
                return
            path.unlink()
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            self._meta_path(key).unlink()
        self._prune(path.parent, self._objects.resolve())
        self._prune(self._meta_path(key).parent, self._meta.resolve())

    async def delete(self, key: str) -> None:
        """See :meth:`ObjectStore.delete`; also removes folders left empty."""
        validate_key(key)
        with self._os_errors(key):
            await asyncio.to_thread(self._delete_sync, key)

    # -- listing --------------------------------------------------------------

    def _scan(self, rel: str, prefix: str) -> list[_Entry]:
        folder = self._objects.resolve() / rel if rel else self._objects.resolve()
        if folder.resolve() != folder:
            return []  # reached through a symlink: not part of the store
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return []
        out: list[_Entry] = []
        for entry in entries:
            if _TMP_MARK in entry.name:
                continue
            key = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                if (key + "/").startswith(prefix) or prefix.startswith(key + "/"):
                    out.append(_Entry(entry.name, True, None))
            elif entry.is_file(follow_symlinks=False) and key.startswith(prefix):
                try:
                    info = self._info(key, Path(entry.path), full=False)
                except ObjectNotFound:
                    continue  # deleted while we listed
                out.append(_Entry(entry.name, False, info))
        # S3 lists keys in UTF-8 byte order; a folder sorts as its name plus '/'.
        out.sort(key=lambda e: (e.name + "/" if e.is_dir else e.name).encode("utf-8"))
        return out

    async def _walk(self, rel: str, prefix: str) -> AsyncIterator[ObjectInfo]:
        with self._os_errors(rel or prefix):
            entries = await asyncio.to_thread(self._scan, rel, prefix)
        for entry in entries:
            if entry.info is not None:
                yield entry.info
            else:
                async for info in self._walk(f"{rel}/{entry.name}" if rel else entry.name, prefix):
                    yield info

    async def list(
        self, prefix: str = "", *, page_size: int = 1000
    ) -> AsyncGenerator[ObjectInfo, None]:
        """See :meth:`ObjectStore.list`; reads one folder per worker-thread call.

        ``page_size`` is checked but has no effect here.
        """
        validate_prefix(prefix)
        _check_page_size(page_size)
        start = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        async for info in self._walk(start, prefix):
            yield info

    # -- unsupported ------------------------------------------------------------

    async def presign_put(
        self, key: str, *, expires_s: int | None = None, content_type: str | None = None
    ) -> str:
        """Always raises ``UnsupportedOperation``: there is no server to present a URL to."""
        validate_key(key)
        raise UnsupportedOperation(
            "the filesystem object store cannot presign URLs; use the 's3' backend "
            "(e.g. `darkroom local s3proxy`) for uploads by URL"
        )

    async def presign_get(self, key: str, *, expires_s: int | None = None) -> str:
        """Always raises ``UnsupportedOperation``: there is no server to present a URL to."""
        validate_key(key)
        raise UnsupportedOperation(
            "the filesystem object store cannot presign URLs; use the 's3' backend"
        )

    @staticmethod
    @contextlib.contextmanager
    def _os_errors(key: str) -> Iterator[None]:
        """Map ``OSError`` to the store's errors: the disk is this backend's server."""
        try:
            yield
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise InvalidKey(
                    f"object key {key!r} has a segment too long for the filesystem"
                ) from exc
            if isinstance(exc, PermissionError):
                raise StorageAccessDenied(
                    f"filesystem store may not access {key!r}: {exc}"
                ) from exc
            raise StorageUnavailable(f"filesystem store failed on {key!r}: {exc}") from exc
