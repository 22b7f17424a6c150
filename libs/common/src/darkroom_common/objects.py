"""Where the pipeline keeps its objects, and moving them between the store and local files.

Every key is derived from ids (and, for variants, the spec hash), never from
time or randomness, so a redelivered event writes the same object again
instead of a second one::

    originals/<gallery_id>/<image_id>/<sanitised filename>
    masters/<gallery_id>/<image_id>/master.jpg        (developed RAW)
    variants/<gallery_id>/<image_id>/<variant>-<spec_hash>.<ext>
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path
from typing import Any, Literal

from darkroom_common.errors import InvalidKey
from darkroom_common.metrics import Metrics
from darkroom_common.storage import ObjectInfo, ObjectStore, PutData, join_key, validate_key

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str, *, max_length: int = 120) -> str:
    """Return ``name``'s last path component, reduced to ``[A-Za-z0-9._-]``, never empty.

    Unicode is NFKD-folded to ASCII first, so ``Été.JPG`` becomes ``Ete.JPG``; the
    extension is kept when the name is cut to ``max_length`` characters.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    ascii_name = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", ascii_name).strip("._-") or "upload"
    if len(cleaned) > max_length:
        stem, dot, ext = cleaned.rpartition(".")
        ext = ext[:16] if dot else ""
        cleaned = (stem if dot else cleaned)[: max_length - len(ext) - 1].rstrip("._-")
        cleaned = f"{cleaned}.{ext}" if ext else cleaned
    return cleaned


def original_key(gallery_id: str, image_id: str, filename: str) -> str:
    """Key of an uploaded original."""
    return join_key("originals", gallery_id, image_id, safe_filename(filename))


def master_key(gallery_id: str, image_id: str) -> str:
    """Key of the JPEG master a RAW original was developed into."""
    return join_key("masters", gallery_id, image_id, "master.jpg")


def is_image_key(key: str, gallery_id: str, image_id: str) -> bool:
    """Whether ``key`` is a valid key of the form ``[<prefix>/]<gallery_id>/<image_id>/<name>``.

    Every key above, and every key the S3 bridge turns into an upload, has this form;
    an event whose key fails the check names another image's object (or none).
    """
    try:
        validate_key(key)
    except InvalidKey:
        return False
    parts = key.split("/")
    return len(parts) >= 3 and parts[-3] == gallery_id and parts[-2] == image_id


ImageObjects = Literal["originals", "masters", "variants"]
"""The three kinds of objects an image has, each under its own prefix."""


def image_prefix(kind: ImageObjects, gallery_id: str, image_id: str) -> str:
    """Return ``<kind>/<gallery_id>/<image_id>/`` (the trailing ``/`` keeps ``i1`` from matching ``i10``)."""
    return join_key(kind, gallery_id, image_id) + "/"


async def delete_image_objects(
    store: ObjectStore, kind: ImageObjects, gallery_id: str, image_id: str
) -> int:
    """Delete every object of one image under ``kind``; return how many there were.

    Idempotent: a redelivered delete finds nothing and returns 0.

    Raises:
        InvalidKey: malformed ids. StorageUnavailable: the store failed (retriable).
    """
    keys = [info.key async for info in store.list(image_prefix(kind, gallery_id, image_id))]
    for key in keys:
        await store.delete(key)
    return len(keys)


def variant_key(gallery_id: str, image_id: str, variant: str, spec_hash: str, ext: str) -> str:
    """Key of one rendered variant; a changed spec gets a new key, an unchanged one the same."""
    return join_key("variants", gallery_id, image_id, f"{variant}-{spec_hash}.{ext}")


async def download(store: ObjectStore, key: str, path: Path, metrics: Metrics) -> tuple[str, int]:
    """Stream object ``key`` into the local file ``path`` (created or replaced).

    The bytes are counted in ``darkroom_object_bytes_total{direction="read"}`` of ``metrics``.

    Returns:
        ``(sha256 hex, size in bytes)`` of what was written.

    Raises:
        ObjectNotFound: no such object.
        StorageUnavailable: the store failed; retrying may help.
    """
    digest = hashlib.sha256()
    size = 0
    with path.open("wb") as f:
        async for chunk in store.get(key):
            digest.update(chunk)
            size += len(chunk)
            f.write(chunk)
    metrics.object_bytes.labels("read").inc(size)
    return digest.hexdigest(), size


async def put_counted(
    store: ObjectStore, key: str, data: PutData, metrics: Metrics, **options: Any
) -> ObjectInfo:
    """``store.put(key, data, **options)``, counting the bytes written in ``darkroom_object_bytes_total``."""
    info = await store.put(key, data, **options)
    metrics.object_bytes.labels("write").inc(info.size)
    return info
