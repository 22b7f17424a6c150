"""S3Store specifics against the real S3 server: presigned URLs, signatures, errors.

All tests here are marked ``s3``. Error mapping for server failures (5xx,
throttling, stalls) uses tiny real HTTP servers on 127.0.0.1 that answer the
way a failing S3 endpoint does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from aiohttp import web

from darkroom_common.errors import (
    ConfigurationError,
    InvalidKey,
    ObjectNotFound,
    PermanentError,
    StorageUnavailable,
)
from darkroom_common.storage import (
    InvalidObject,
    S3Store,
    StorageAccessDenied,
    StorageSettings,
)
from darkroom_dev.testing.s3 import S3Server, free_port

pytestmark = pytest.mark.s3

MIB = 1024 * 1024


def tamper_signature(url: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    out = []
    for name, value in query:
        if name == "X-Amz-Signature":
            value = ("0" if value[0] != "0" else "1") + value[1:]
        out.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(out)))


async def open_uploads(store: S3Store) -> list[str]:
    client = await store.client()
    resp = await client.list_multipart_uploads(Bucket=store.bucket)
    return [u["Key"] for u in resp.get("Uploads", [])]


async def test_client_uses_sigv4_path_style_and_checksums_only_when_required(
    s3_store: S3Store,
) -> None:
    config: Any = (await s3_store.client()).meta.config  # botocore Config is untyped
    assert config.signature_version == "s3v4"
    assert config.s3 == {"addressing_style": "path"}
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    url = await s3_store.presign_get("k", expires_s=60)
    assert url.startswith(f"{s3_store.settings.endpoint_url}/{s3_store.bucket}/k?")


async def test_presigned_put_uploads_a_readable_object(s3_store: S3Store) -> None:
    url = await s3_store.presign_put("uploads/p.jpg", expires_s=60, content_type="image/jpeg")
    async with httpx.AsyncClient() as http:
        resp = await http.put(
            url, content=b"\xff\xd8presigned", headers={"Content-Type": "image/jpeg"}
        )
    assert resp.status_code == 200, resp.text
    assert await s3_store.get_bytes("uploads/p.jpg") == b"\xff\xd8presigned"
    assert (await s3_store.head("uploads/p.jpg")).content_type == "image/jpeg"


async def test_presigned_put_with_tampered_signature_is_refused(s3_store: S3Store) -> None:
    url = await s3_store.presign_put("uploads/t.jpg", expires_s=60)
    bad = tamper_signature(url)
    assert bad != url
    async with httpx.AsyncClient() as http:
        resp = await http.put(bad, content=b"evil")
    assert resp.status_code == 403
    assert "SignatureDoesNotMatch" in resp.text
    assert not await s3_store.exists("uploads/t.jpg")


async def test_presigned_put_for_another_key_is_refused(s3_store: S3Store) -> None:
    url = await s3_store.presign_put("uploads/allowed", expires_s=60)
    async with httpx.AsyncClient() as http:
        resp = await http.put(url.replace("/uploads/allowed?", "/uploads/other?"), content=b"x")
    assert resp.status_code == 403
    assert not await s3_store.exists("uploads/other")


async def test_presigned_put_with_other_content_type_is_refused(s3_store: S3Store) -> None:
    url = await s3_store.presign_put("uploads/c", expires_s=60, content_type="image/jpeg")
    async with httpx.AsyncClient() as http:
        resp = await http.put(url, content=b"<svg/>", headers={"Content-Type": "image/svg+xml"})
    assert resp.status_code == 403
    assert not await s3_store.exists("uploads/c")


@pytest.mark.slow
async def test_expired_presigned_url_is_refused(s3_store: S3Store) -> None:
    put_url = await s3_store.presign_put("uploads/late", expires_s=1)
    await s3_store.put("existing", b"data")
    get_url = await s3_store.presign_get("existing", expires_s=1)
    await asyncio.sleep(2.2)
    async with httpx.AsyncClient() as http:
        put = await http.put(put_url, content=b"too late")
        got = await http.get(get_url)
    assert put.status_code == 403, put.text
    assert got.status_code == 403, got.text
    assert not await s3_store.exists("uploads/late")


async def test_presigned_get_reads_the_object(s3_store: S3Store) -> None:
    await s3_store.put("v/w1024.avif", b"AVIF bytes", content_type="image/avif")
    url = await s3_store.presign_get("v/w1024.avif", expires_s=60)
    async with httpx.AsyncClient() as http:
        ok = await http.get(url)
        tampered = await http.get(tamper_signature(url))
        missing = await http.get(await s3_store.presign_get("v/none", expires_s=60))
    assert (ok.status_code, ok.content) == (200, b"AVIF bytes")
    assert ok.headers["content-type"] == "image/avif"
    assert tampered.status_code == 403
    assert missing.status_code == 404


async def test_presign_uses_default_expiry_and_checks_bounds(s3_store: S3Store) -> None:
    url = await s3_store.presign_get("k")
    assert dict(parse_qsl(urlsplit(url).query))["X-Amz-Expires"] == "900"
    for bad in (0, -1, 7 * 24 * 3600 + 1):
        with pytest.raises(InvalidObject):
            await s3_store.presign_put("k", expires_s=bad)
    with pytest.raises(InvalidKey):
        await s3_store.presign_put("../k", expires_s=60)
    with pytest.raises(InvalidObject):
        await s3_store.presign_put("k", expires_s=60, content_type="bogus")


async def test_unsigned_requests_are_refused_by_the_server(
    s3_store: S3Store, s3_server: S3Server
) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.put(f"{s3_server.endpoint_url}/{s3_store.bucket}/anon", content=b"x")
    assert resp.status_code == 403
    assert not await s3_store.exists("anon")


async def test_wrong_secret_is_access_denied(s3_store: S3Store, s3_server: S3Server) -> None:
    bad = S3Store(
        s3_server.settings(s3_store.bucket, secret_access_key="wrong-secret", max_attempts=1)
    )
    async with bad:
        with pytest.raises(StorageAccessDenied) as info:
            await bad.put("k", b"x")
        assert not info.value.retriable
        assert "secret key" in info.value.message
        with pytest.raises(StorageAccessDenied):
            await bad.get_bytes("k")
        with pytest.raises(StorageAccessDenied):
            [i async for i in bad.list()]
    assert not await s3_store.exists("k")


async def test_missing_bucket_is_a_configuration_error(s3_server: S3Server) -> None:
    async with S3Store(s3_server.settings("no-such-bucket-darkroom")) as store:
        with pytest.raises(ConfigurationError, match="does not exist"):
            await store.put("k", b"x")
        with pytest.raises(ConfigurationError, match="does not exist"):
            [i async for i in store.list()]


async def test_ensure_bucket_is_idempotent(s3_store: S3Store) -> None:
    assert await s3_store.ensure_bucket() is False  # the fixture created it
    await s3_store.put("k", b"x")
    assert await s3_store.ensure_bucket() is False
    assert await s3_store.exists("k")


async def test_multipart_upload_parts_and_no_leftover_uploads(s3_store: S3Store) -> None:
    data = bytes(range(256)) * (12 * MIB // 256)
    info = await s3_store.put("mp", data)
    assert info.etag.endswith("-3")  # 5 MiB + 5 MiB + 2 MiB
    assert await s3_store.get_bytes("mp") == data
    small = await s3_store.put("sp", data[: 5 * MIB])  # == threshold: one PutObject
    assert "-" not in small.etag
    assert await open_uploads(s3_store) == []


async def test_failed_multipart_upload_is_aborted(s3_store: S3Store) -> None:
    async def failing() -> AsyncIterator[bytes]:
        for _ in range(11):
            yield b"\x03" * MIB
        raise RuntimeError("camera card removed")

    with pytest.raises(RuntimeError, match="camera card removed"):
        await s3_store.put("aborted", failing())
    assert await open_uploads(s3_store) == []
    assert not await s3_store.exists("aborted")


async def test_cancelled_multipart_upload_is_aborted(s3_store: S3Store) -> None:
    sent = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield b"\x04" * (11 * MIB)
        sent.set()
        await asyncio.Event().wait()
        yield b""

    task = asyncio.create_task(s3_store.put("cancelled", stalls()))
    await asyncio.wait_for(sent.wait(), 30)
    for _ in range(600):  # the first part is uploaded shortly after the stream stalls
        if await open_uploads(s3_store):
            break
        await asyncio.sleep(0.05)
    assert await open_uploads(s3_store) == ["cancelled"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await open_uploads(s3_store) == []
    assert not await s3_store.exists("cancelled")


def fast_failing(endpoint: str) -> StorageSettings:
    return StorageSettings(
        backend="s3",
        bucket="any-bucket",
        endpoint_url=endpoint,
        access_key_id="AKID",
        secret_access_key="secret",
        connect_timeout_s=0.5,
        read_timeout_s=0.5,
        max_attempts=1,
    )


async def test_unreachable_endpoint_is_storage_unavailable() -> None:
    port = free_port()  # nothing listens there any more
    async with S3Store(fast_failing(f"http://127.0.0.1:{port}")) as store:
        for call in (
            store.head("k"),
            store.put("k", b"x"),
            store.get_bytes("k"),
            store.delete("k"),
            store.ensure_bucket(),
        ):
            with pytest.raises(StorageUnavailable) as info:
                await call
            assert info.value.retriable
            assert f"127.0.0.1:{port}" in info.value.message
        with pytest.raises(StorageUnavailable):
            [i async for i in store.list()]


def s3_error(status: int, code: str) -> web.Response:
    body = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{code} here</Message></Error>"
    return web.Response(status=status, body=body.encode(), content_type="application/xml")


async def serve(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (503, "SlowDown", StorageUnavailable),
        (500, "InternalError", StorageUnavailable),
        (502, "BadGateway", StorageUnavailable),
        (429, "TooManyRequests", StorageUnavailable),
        (403, "AccessDenied", StorageAccessDenied),
        (404, "NoSuchKey", ObjectNotFound),
        (404, "NoSuchBucket", ConfigurationError),
        (400, "InvalidArgument", PermanentError),
    ],
)
async def test_server_errors_are_mapped(status: int, code: str, error: type[Exception]) -> None:
    async def handler(request: web.Request) -> web.Response:
        return s3_error(status, code)

    runner, endpoint = await serve(handler)
    try:
        async with S3Store(fast_failing(endpoint)) as store:
            with pytest.raises(error) as info:
                await store.get_bytes("k")
            assert info.value.retriable is (error is StorageUnavailable)  # type: ignore[attr-defined]
            with pytest.raises(error):
                await store.put("k", b"x")
    finally:
        await runner.cleanup()


async def test_head_5xx_without_body_is_storage_unavailable() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=503)

    runner, endpoint = await serve(handler)
    try:
        async with S3Store(fast_failing(endpoint)) as store:
            with pytest.raises(StorageUnavailable):
                await store.head("k")
    finally:
        await runner.cleanup()


async def test_stalled_server_is_a_timeout() -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await release.wait()
        return s3_error(500, "InternalError")

    runner, endpoint = await serve(handler)
    try:
        async with S3Store(fast_failing(endpoint)) as store:
            with pytest.raises(StorageUnavailable, match="could not reach"):
                await asyncio.wait_for(store.head("k"), 10)
    finally:
        release.set()
        await runner.cleanup()


async def test_stream_cut_midway_is_storage_unavailable() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            status=200, headers={"Content-Length": str(4 * MIB), "ETag": '"x"'}
        )
        await resp.prepare(request)
        await resp.write(b"\x05" * MIB)
        assert request.transport is not None
        request.transport.close()
        return resp

    runner, endpoint = await serve(handler)
    try:
        async with S3Store(fast_failing(endpoint)) as store:
            with pytest.raises(StorageUnavailable):
                await store.get_bytes("k")
    finally:
        await runner.cleanup()
