"""The ObjectStore contract: the same tests against FilesystemStore and S3Store.

The S3 cases run against the session's real S3 server (S3Proxy, see
``darkroom_dev.testing.s3``) and are marked ``s3``; ``-m "not s3"`` runs the
filesystem half alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from darkroom_common.errors import InvalidKey, ObjectNotFound
from darkroom_common.storage import (
    DEFAULT_CONTENT_TYPE,
    FilesystemStore,
    InvalidObject,
    ObjectStore,
)

from .test_keys import BAD_KEYS

MIB = 1024 * 1024
CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[5] / "shared" / "corpus"
)
EMPTY_MD5 = hashlib.md5(b"", usedforsecurity=False).hexdigest()


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """A fresh, empty store of each backend (S3: a new bucket on the session server)."""
    if request.param == "filesystem":
        return FilesystemStore(tmp_path / "store")
    s3_store: ObjectStore = request.getfixturevalue("s3_store")
    return s3_store


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


async def random_stream(total: int, chunk: int, seed_out: list[bytes]) -> AsyncIterator[bytes]:
    """Yield ``total`` random bytes in ``chunk``-sized pieces, recording them for checking."""
    sent = 0
    while sent < total:
        block = os.urandom(min(chunk, total - sent))
        seed_out.append(block)
        sent += len(block)
        yield block


async def keys_of(store: ObjectStore, prefix: str = "", **kwargs: int) -> list[str]:
    return [info.key async for info in store.list(prefix, **kwargs)]


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


async def test_round_trip_bytes(store: ObjectStore) -> None:
    data = b"darkroom \x00\xff bytes " * 100
    info = await store.put("a/b/c.bin", data)
    assert info.key == "a/b/c.bin"
    assert info.size == len(data)
    assert info.etag == md5(data)
    assert await store.get_bytes("a/b/c.bin") == data
    pieces = [piece async for piece in store.get("a/b/c.bin", chunk_size=7)]
    assert all(0 < len(piece) <= 7 for piece in pieces)
    assert b"".join(pieces) == data


async def test_round_trip_async_stream_with_uneven_and_empty_chunks(store: ObjectStore) -> None:
    parts = (b"", b"x", b"", b"yz" * 1000, bytearray(b"tail"), b"")
    info = await store.put("stream.bin", chunks(*parts))  # type: ignore[arg-type]
    expected = b"".join(parts)
    assert info.size == len(expected)
    assert await store.get_bytes("stream.bin") == expected


async def test_empty_object(store: ObjectStore) -> None:
    info = await store.put("empty", b"")
    assert (info.size, info.etag) == (0, EMPTY_MD5)
    assert await store.get_bytes("empty") == b""
    assert (await store.head("empty")).size == 0


async def test_round_trip_corpus_jpeg_from_file_object(store: ObjectStore) -> None:
    rel = "jpeg/exif_lens_gps_iphone6.jpg"
    with (CORPUS / "MANIFEST.csv").open(newline="") as f:
        expected_sha = next(row["sha256"] for row in csv.DictReader(f) if row["path"] == rel)
    with (CORPUS / rel).open("rb") as f:
        info = await store.put("originals/iphone6.jpg", f, content_type="image/jpeg")
    assert info.size == (CORPUS / rel).stat().st_size
    assert info.content_type == "image/jpeg"
    digest = hashlib.sha256()
    async for piece in store.get("originals/iphone6.jpg"):
        digest.update(piece)
    assert digest.hexdigest() == expected_sha


async def test_round_trip_bytesio(store: ObjectStore) -> None:
    await store.put("bio", io.BytesIO(b"from a BytesIO"))
    assert await store.get_bytes("bio") == b"from a BytesIO"


@pytest.mark.slow
async def test_large_object_crossing_the_multipart_threshold(store: ObjectStore) -> None:
    sent: list[bytes] = []
    total = 12 * MIB + 12345
    info = await store.put("big/object.bin", random_stream(total, 1_000_003, sent))
    expected = hashlib.sha256(b"".join(sent)).hexdigest()
    assert info.size == total
    digest = hashlib.sha256()
    size = 0
    async for piece in store.get("big/object.bin"):
        digest.update(piece)
        size += len(piece)
    assert (size, digest.hexdigest()) == (total, expected)
    assert (await store.head("big/object.bin")).size == total


async def test_head_exists_content_type_and_metadata(store: ObjectStore) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    meta = {"image-id": "01J9ZK3V6YQ", "variant": "w1024", "sha256": "ab" * 32}
    put = await store.put("v/x.avif", b"AVIF", content_type="image/avif", metadata=meta)
    head = await store.head("v/x.avif")
    assert head.content_type == put.content_type == "image/avif"
    assert dict(head.metadata) == dict(put.metadata) == meta
    assert head.size == 4
    assert head.etag == put.etag == md5(b"AVIF")
    assert head.last_modified.tzinfo is not None
    assert head.last_modified.utcoffset() == timedelta(0)
    assert before <= head.last_modified <= datetime.now(UTC) + timedelta(seconds=5)
    assert await store.exists("v/x.avif")
    assert not await store.exists("v/y.avif")
    assert not await store.exists("v")


async def test_default_content_type(store: ObjectStore) -> None:
    await store.put("blob", b"1")
    assert (await store.head("blob")).content_type == DEFAULT_CONTENT_TYPE


async def test_put_replaces_bytes_and_metadata(store: ObjectStore) -> None:
    await store.put("k", b"old", content_type="text/plain", metadata={"a": "1"})
    await store.put("k", b"newer", content_type="image/png", metadata={"b": "2"})
    head = await store.head("k")
    assert (head.size, head.content_type, dict(head.metadata)) == (5, "image/png", {"b": "2"})
    assert await store.get_bytes("k") == b"newer"


async def test_delete_is_idempotent(store: ObjectStore) -> None:
    await store.put("d/e/f", b"x")
    await store.delete("d/e/f")
    assert not await store.exists("d/e/f")
    with pytest.raises(ObjectNotFound):
        await store.get_bytes("d/e/f")
    await store.delete("d/e/f")
    await store.delete("never/written")
    assert await keys_of(store) == []


async def test_missing_key_raises_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound) as info:
        await store.head("no/such/key")
    assert not info.value.retriable
    with pytest.raises(ObjectNotFound):
        await store.get_bytes("no/such/key")
    stream = store.get("no/such/key")
    with pytest.raises(ObjectNotFound):
        await anext(stream)


async def test_list_by_prefix_in_byte_order(store: ObjectStore) -> None:
    keys = [
        "img/1/w100.jpg",
        "img/1/w200.jpg",
        "img/10/w100.jpg",
        "img/2/w100.jpg",
        "img-x",
        "img.txt",
        "other/a",
        "café/é.jpg",
    ]
    for key in keys:
        await store.put(key, key.encode())
    assert await keys_of(store) == sorted(keys, key=lambda k: k.encode())
    assert await keys_of(store, "img/1/") == ["img/1/w100.jpg", "img/1/w200.jpg"]
    assert await keys_of(store, "img/1") == ["img/1/w100.jpg", "img/1/w200.jpg", "img/10/w100.jpg"]
    assert await keys_of(store, "img") == [
        "img-x",
        "img.txt",
        "img/1/w100.jpg",
        "img/1/w200.jpg",
        "img/10/w100.jpg",
        "img/2/w100.jpg",
    ]
    assert await keys_of(store, "café/") == ["café/é.jpg"]
    assert await keys_of(store, "nothing/") == []
    listed = [info async for info in store.list("other/")]
    assert [(i.size, i.etag, i.content_type, dict(i.metadata)) for i in listed] == [
        (7, md5(b"other/a"), None, {})
    ]
    assert listed[0].last_modified.utcoffset() == timedelta(0)


async def test_list_paginates(store: ObjectStore) -> None:
    keys = [f"page/{n:03d}" for n in range(23)]
    await asyncio.gather(*(store.put(k, b"p") for k in keys))
    assert await keys_of(store, "page/", page_size=5) == keys
    assert await keys_of(store, "page/01", page_size=1) == [f"page/01{n}" for n in range(10)]


async def test_list_rejects_bad_page_size(store: ObjectStore) -> None:
    with pytest.raises(InvalidObject):
        await keys_of(store, "", page_size=0)
    with pytest.raises(InvalidObject):
        await keys_of(store, "", page_size=1001)


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_invalid_keys_are_rejected_by_every_operation(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        await store.put(key, b"x")
    with pytest.raises(InvalidKey):
        await store.get_bytes(key)
    with pytest.raises(InvalidKey):
        await store.head(key)
    with pytest.raises(InvalidKey):
        await store.exists(key)
    with pytest.raises(InvalidKey):
        await store.delete(key)
    assert await keys_of(store) == []


@pytest.mark.parametrize("prefix", ["/", "../", "a//", "a\\b"])
async def test_invalid_prefixes_are_rejected(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(InvalidKey):
        await keys_of(store, prefix)


@pytest.mark.parametrize(
    "key", ["café/日本語 ü.jpg", "a b+c%20d=e&f;g'h.txt", "ümlaut/~tilde/(paren)/[x]{y}.bin"]
)
async def test_unusual_but_valid_keys_round_trip(store: ObjectStore, key: str) -> None:
    await store.put(key, b"ok")
    assert await store.get_bytes(key) == b"ok"
    assert (await store.head(key)).key == key
    assert await keys_of(store) == [key]


@pytest.mark.parametrize(
    ("content_type", "metadata"),
    [
        ("not a type", None),
        ("image/jpeg\r\nx-evil: 1", None),
        ("", None),
        (None, {"Upper": "x"}),
        (None, {"under_score": "x"}),
        (None, {"k": "line\nbreak"}),
        (None, {"k": "naïve"}),
        (None, {"k": " padded"}),
        (None, {"k": "v" * 2100}),
    ],
)
async def test_invalid_content_type_or_metadata_is_rejected(
    store: ObjectStore, content_type: str | None, metadata: dict[str, str] | None
) -> None:
    with pytest.raises(InvalidObject):
        await store.put("k", b"x", content_type=content_type, metadata=metadata)
    assert not await store.exists("k")


async def test_non_bytes_stream_is_rejected(store: ObjectStore) -> None:
    async def strings() -> AsyncIterator[str]:
        yield "text"

    with pytest.raises(InvalidObject):
        await store.put("k", strings())  # type: ignore[arg-type]
    with pytest.raises(InvalidObject):
        await store.put("k", 12345)  # type: ignore[arg-type]
    assert not await store.exists("k")


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("size", [1024, 7 * MIB], ids=["small", "past-multipart-threshold"])
async def test_interrupted_put_leaves_no_object(store: ObjectStore, size: int) -> None:
    async def failing() -> AsyncIterator[bytes]:
        sent = 0
        while sent < size:
            yield b"\x01" * min(MIB, size - sent)
            sent += MIB
        raise Interrupted("source broke midway")

    with pytest.raises(Interrupted):
        await store.put("victim", failing())
    assert not await store.exists("victim")
    assert await keys_of(store) == []


async def test_interrupted_put_keeps_the_previous_object(store: ObjectStore) -> None:
    await store.put("keep", b"original", content_type="text/plain", metadata={"v": "1"})

    async def failing() -> AsyncIterator[bytes]:
        yield b"replacement" * 1000
        raise Interrupted

    with pytest.raises(Interrupted):
        await store.put("keep", failing(), metadata={"v": "2"})
    head = await store.head("keep")
    assert (head.content_type, dict(head.metadata)) == ("text/plain", {"v": "1"})
    assert await store.get_bytes("keep") == b"original"


async def test_cancelled_put_leaves_no_object(store: ObjectStore) -> None:
    started = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield b"\x02" * (6 * MIB)
        started.set()
        await asyncio.Event().wait()
        yield b"never"

    task = asyncio.create_task(store.put("cancelled", stalls()))
    await asyncio.wait_for(started.wait(), 30)
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await store.exists("cancelled")
    assert await keys_of(store) == []


async def test_abandoned_get_releases_and_object_stays_usable(store: ObjectStore) -> None:
    await store.put("r", b"z" * 100_000)
    async with contextlib.aclosing(store.get("r", chunk_size=1000)) as stream:
        async for first in stream:
            assert first == b"z" * len(first)
            break
    await store.delete("r")
    assert not await store.exists("r")


async def test_context_manager_closes(store: ObjectStore) -> None:
    async with store as entered:
        assert entered is store
        await store.put("ctx", b"1")
