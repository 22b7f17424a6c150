"""The fault proxy in front of the real S3 server: byte-exact forwarding, 5xx answers, vanishing."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from darkroom_common.errors import StorageUnavailable
from darkroom_common.storage import S3Store
from darkroom_dev.testing.faultproxy import INTERNAL_ERROR, SLOW_DOWN, FaultProxy, HttpFault

pytestmark = pytest.mark.s3


@pytest.fixture
def proxy(s3_server):
    with FaultProxy(s3_server.endpoint_url) as p:
        yield p


@pytest.fixture
async def proxied(s3_store, s3_settings, proxy):
    """An S3Store on the test bucket (created by ``s3_store``) whose requests go through ``proxy``."""
    store = S3Store(s3_settings.model_copy(update={"endpoint_url": proxy.endpoint_url}))
    try:
        yield store
    finally:
        await store.close()


async def test_forwarding_keeps_sigv4_valid_and_bytes_exact(proxied, s3_store, proxy):
    data = bytes(range(256)) * 40_000  # 10 MB: multipart through the proxy
    info = await proxied.put("a/b.bin", data, content_type="application/octet-stream")
    assert info.size == len(data)
    assert await s3_store.get_bytes("a/b.bin") == data  # read directly from the server
    assert await proxied.get_bytes("a/b.bin") == data
    # CreateMultipartUpload, 2 × UploadPart, CompleteMultipartUpload, HeadObject, GetObject.
    assert proxy.stats.forwarded == 6
    assert not proxy.stats.injected


async def test_every_request_answers_503_slowdown_until_healed(proxied, s3_settings, proxy):
    await proxied.put("k", b"before")
    proxy.fail(SLOW_DOWN)  # the pooled keep-alive connection sees it on its next request
    with pytest.raises(StorageUnavailable, match="SlowDown"):
        await proxied.put("k", b"during")
    # botocore retried the throttle itself: every attempt got the 503.
    assert proxy.stats.injected[503] == s3_settings.max_attempts
    proxy.heal()
    await proxied.put("k", b"after")
    assert await proxied.get_bytes("k") == b"after"


async def test_every_kth_request_fails_and_botocore_retries_through(proxied, proxy):
    proxy.fail(HttpFault(500, "InternalError", "boom", every=2))
    for i in range(6):
        await proxied.put(f"k{i}", b"x")  # max_attempts=2: the retry of a failed one passes
    # 12 operations (PutObject + HeadObject each); alternate requests fail, so every
    # operation after the first fails once and its retry is forwarded.
    assert (proxy.stats.forwarded, proxy.stats.injected[500]) == (12, 11)


def test_error_body_is_s3_xml_and_head_has_none(proxy):
    proxy.fail(INTERNAL_ERROR)
    got = httpx.get(f"{proxy.endpoint_url}/bucket/key")
    assert got.status_code == 500
    assert "<Code>InternalError</Code>" in got.text
    assert got.headers["connection"] == "close"
    head = httpx.head(f"{proxy.endpoint_url}/bucket/key")
    assert (head.status_code, head.content) == (500, b"")


async def test_vanish_refuses_connections_then_heal_serves_on_the_same_port(proxied, proxy):
    await proxied.put("k", b"v1")
    port = proxy.port
    proxy.vanish()
    assert proxy.stats.resets >= 1  # the pooled connection was cut
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # refused
    started = time.monotonic()
    with pytest.raises(StorageUnavailable, match="could not reach"):
        await proxied.get_bytes("k")
    assert time.monotonic() - started < 20
    proxy.heal()
    assert proxy.port == port
    assert await proxied.get_bytes("k") == b"v1"
