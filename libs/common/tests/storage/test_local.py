"""FilesystemStore specifics: confinement to the root, crash safety, sidecars."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from darkroom_common.errors import InvalidKey, StorageUnavailable
from darkroom_common.storage import (
    DEFAULT_CONTENT_TYPE,
    FilesystemStore,
    StorageAccessDenied,
    StorageSettings,
    UnsupportedOperation,
    open_store,
)


@pytest.fixture
def fs(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "store")


def visible_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def test_layout_keeps_objects_and_sidecars_apart(fs: FilesystemStore) -> None:
    await fs.put("a/b.jpg", b"jpeg", content_type="image/jpeg")
    assert (fs.root / "objects" / "a" / "b.jpg").read_bytes() == b"jpeg"
    assert (fs.root / "meta" / "a" / "b.jpg.json").is_file()
    assert [i.key async for i in fs.list()] == ["a/b.jpg"]


async def test_symlink_cannot_lead_a_key_out_of_the_root(
    fs: FilesystemStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    (fs.root / "objects").mkdir(parents=True)
    (fs.root / "objects" / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidKey, match="outside the store root"):
        await fs.get_bytes("escape/secret.txt")
    with pytest.raises(InvalidKey, match="outside the store root"):
        await fs.head("escape/secret.txt")
    with pytest.raises(InvalidKey, match="outside the store root"):
        await fs.put("escape/new.txt", b"x")
    with pytest.raises(InvalidKey, match="outside the store root"):
        await fs.delete("escape/secret.txt")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == b"secret"
    assert [i.key async for i in fs.list()] == []  # symlinks are not objects
    assert [i.key async for i in fs.list("escape/")] == []
    assert [i.key async for i in fs.list("escape/sec")] == []


async def test_dotdot_keys_never_touch_the_disk(fs: FilesystemStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidKey):
        await fs.put("../../escaped", b"x")
    assert not (tmp_path / "escaped").exists()
    assert not fs.root.exists()


CRASH_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from darkroom_common.storage import FilesystemStore

    async def stream():
        yield b"A" * 1_500_000
        yield b"B" * 1_500_000
        print("midway", flush=True)
        await asyncio.sleep(3600)
        yield b"never"

    asyncio.run(FilesystemStore(sys.argv[1]).put(sys.argv[2], stream()))
    """
)


@pytest.mark.parametrize("existing", [False, True], ids=["new-key", "replacing"])
async def test_crash_mid_write_leaves_no_partial_object(
    fs: FilesystemStore, existing: bool
) -> None:
    if existing:
        await fs.put("photos/p.jpg", b"old bytes", content_type="image/jpeg")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASH_SCRIPT,
        str(fs.root),
        "photos/p.jpg",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"midway\n"
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    partials = [p for p in (fs.root / "objects" / "photos").iterdir() if "partial" in p.name]
    assert len(partials) == 1, "the writer should have died with its temporary file on disk"
    assert partials[0].stat().st_size >= 1_500_000
    if existing:
        assert await fs.get_bytes("photos/p.jpg") == b"old bytes"
        assert (await fs.head("photos/p.jpg")).content_type == "image/jpeg"
        assert [i.key async for i in fs.list()] == ["photos/p.jpg"]
    else:
        assert not await fs.exists("photos/p.jpg")
        assert [i.key async for i in fs.list()] == []
    # The leftover does not block a later write of the same key.
    await fs.put("photos/p.jpg", b"new")
    assert await fs.get_bytes("photos/p.jpg") == b"new"


async def test_stale_sidecar_is_ignored(fs: FilesystemStore) -> None:
    await fs.put("s", b"first", content_type="text/plain", metadata={"k": "v"})
    # As if a crash hit between renaming the data and renaming its sidecar.
    data = fs.root / "objects" / "s"
    tmp = data.with_name("replacement")
    tmp.write_bytes(b"second version")
    os.replace(tmp, data)
    head = await fs.head("s")
    assert head.content_type == DEFAULT_CONTENT_TYPE
    assert dict(head.metadata) == {}
    assert head.etag == hashlib.md5(b"second version", usedforsecurity=False).hexdigest()
    assert head.size == len(b"second version")


async def test_files_without_sidecar_are_objects(fs: FilesystemStore) -> None:
    (fs.root / "objects" / "dropped").mkdir(parents=True)
    (fs.root / "objects" / "dropped" / "in.bin").write_bytes(b"by hand")
    head = await fs.head("dropped/in.bin")
    assert (head.size, head.content_type) == (7, DEFAULT_CONTENT_TYPE)
    assert [i.key async for i in fs.list()] == ["dropped/in.bin"]


async def test_key_and_its_folder_cannot_coexist(fs: FilesystemStore) -> None:
    await fs.put("a", b"file")
    with pytest.raises(InvalidKey, match="cannot hold both"):
        await fs.put("a/b", b"x")
    await fs.put("c/d", b"x")
    with pytest.raises(InvalidKey, match="cannot hold both"):
        await fs.put("c", b"x")
    assert [i.key async for i in fs.list()] == ["a", "c/d"]
    assert not await fs.exists("c")


async def test_delete_prunes_empty_folders(fs: FilesystemStore) -> None:
    await fs.put("x/y/z", b"1")
    await fs.put("x/keep", b"2")
    await fs.delete("x/y/z")
    assert not (fs.root / "objects" / "x" / "y").exists()
    assert not (fs.root / "meta" / "x" / "y").exists()
    await fs.delete("x/keep")
    assert not (fs.root / "objects" / "x").exists()
    await fs.put("x", b"now a file")  # the folder is gone, so the key is free
    assert await fs.get_bytes("x") == b"now a file"


async def test_delete_of_a_folder_key_removes_nothing(fs: FilesystemStore) -> None:
    await fs.put("dir/obj", b"1")
    await fs.delete("dir")
    assert await fs.get_bytes("dir/obj") == b"1"


async def test_partial_files_are_hidden_from_list(fs: FilesystemStore) -> None:
    await fs.put("p/real", b"1")
    (fs.root / "objects" / "p" / "\\partial-deadbeef").write_bytes(b"junk")
    assert [i.key async for i in fs.list()] == ["p/real"]
    assert [i.key async for i in fs.list("p/")] == ["p/real"]


async def test_presigning_is_unsupported(fs: FilesystemStore) -> None:
    with pytest.raises(UnsupportedOperation, match="cannot presign") as info:
        await fs.presign_put("k", expires_s=60)
    assert not info.value.retriable
    with pytest.raises(UnsupportedOperation):
        await fs.presign_get("k")
    with pytest.raises(InvalidKey):
        await fs.presign_get("../k")


async def test_unusable_root_is_storage_unavailable(tmp_path: Path) -> None:
    root = tmp_path / "not-a-folder"
    root.write_bytes(b"a file where the store should be")
    store = FilesystemStore(root)
    with pytest.raises(StorageUnavailable) as info:
        await store.put("k", b"x")
    assert info.value.retriable


async def test_too_long_segment_is_an_invalid_key(fs: FilesystemStore) -> None:
    with pytest.raises(InvalidKey, match="too long"):
        await fs.put("x" * 300, b"1")


async def test_open_store_local_writes_under_root(tmp_path: Path) -> None:
    async with open_store(StorageSettings(root=tmp_path / "r")) as store:
        await store.put("k", b"v")
    assert visible_files(tmp_path / "r") == ["meta/k.json", "objects/k"]


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` refuse new files: chmod for users, the immutable flag for root."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)


async def test_permission_denied_is_storage_access_denied(fs: FilesystemStore) -> None:
    await fs.put("locked/a", b"1")
    with read_only(fs.root / "objects" / "locked"):
        with pytest.raises(StorageAccessDenied) as info:
            await fs.put("locked/b", b"2")
        assert not info.value.retriable
    assert [i.key async for i in fs.list()] == ["locked/a"]
