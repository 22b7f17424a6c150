"""The upload API over real HTTP, with a filesystem store and the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from darkroom_common.storage import FilesystemStore
from darkroom_ingest.api import create_api
from darkroom_ingest.settings import IngestSettings
from darkroom_ingest.testing import (
    ADMIN_KEY,
    KEYS,
    READ_KEY,
    UPLOAD_KEY,
    ServerThread,
    auth,
    free_port,
    read_events,
    wait_ready,
)
from darkroom_schemas import UploadedV1

pytestmark = pytest.mark.kafka

LIMIT = 1024 * 1024


def settings_for(bootstrap: str, prefix: str, root: Path, **extra: object) -> IngestSettings:
    return IngestSettings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        storage={"backend": "local", "root": root},
        auth={"api_keys": KEYS},
        max_upload_bytes=LIMIT,
        **extra,
    )


@pytest.fixture
def api(kafka_bootstrap, kafka_prefix, tmp_path) -> Iterator[tuple[str, IngestSettings]]:
    port = free_port()
    settings = settings_for(kafka_bootstrap, kafka_prefix, tmp_path / "objects", api_port=port)
    with ServerThread(create_api(settings), port) as server:
        wait_ready(server.url)
        yield server.url, settings


def stored(settings: IngestSettings) -> list[str]:
    async def keys() -> list[str]:
        async with FilesystemStore(settings.storage.root) as store:
            return [info.key async for info in store.list("")]

    return asyncio.run(keys())


def content(settings: IngestSettings, key: str) -> bytes:
    async def get() -> bytes:
        async with FilesystemStore(settings.storage.root) as store:
            return await store.get_bytes(key)

    return asyncio.run(get())


def test_upload_streams_to_the_store_and_produces_uploaded(api, corpus_jpeg, kafka_bootstrap):
    url, settings = api
    data = corpus_jpeg.read_bytes()
    r = httpx.post(
        f"{url}/v1/galleries/trip-2024/uploads",
        headers=auth(UPLOAD_KEY),
        data={"profile": "web"},
        files={"file": ("Été photo.JPG", data, "image/jpeg")},
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["job_id"] == body["image_id"]
    assert body["job_url"] == f"{url}/v1/jobs/{body['job_id']}"
    key = f"originals/trip-2024/{body['image_id']}/Ete_photo.JPG"
    assert body["object_key"] == key
    assert stored(settings) == [key]
    assert content(settings, key) == data
    events = read_events(
        kafka_bootstrap,
        settings.topic("uploaded"),
        1,
        match=lambda e: e.image_id == body["image_id"],
    )
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, UploadedV1)
    assert (event.source, event.profile, event.size_bytes) == ("api", "web", len(data))
    assert (event.filename, event.content_type, event.object_key) == (
        "Été photo.JPG",
        "image/jpeg",
        key,
    )


def test_admin_key_may_upload_and_profile_may_be_a_query_parameter(api, corpus_jpeg):
    url, _ = api
    r = httpx.post(
        f"{url}/v1/galleries/g1/uploads?profile=thumbs",
        headers=auth(ADMIN_KEY),
        files={"file": ("a.jpg", corpus_jpeg.read_bytes())},
    )
    assert r.status_code == 202, r.text


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({}, 401, "unauthenticated"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "unauthenticated"),
        (auth("not-a-known-key-at-all"), 401, "unauthenticated"),
        (auth(READ_KEY), 403, "forbidden"),
    ],
)
def test_uploads_need_an_upload_key(api, headers, status, reason):
    url, settings = api
    for path in (
        "/v1/galleries/g1/uploads",
        "/v1/galleries/g1/upload-urls",
        "/v1/uploads/x/complete",
    ):
        r = httpx.post(f"{url}{path}", headers=headers, files={"file": ("a.jpg", b"x")})
        assert r.status_code == status, (path, r.text)
        assert r.json()["reason"] == reason
        if status == 401:
            assert r.headers["www-authenticate"].startswith("Bearer")
    assert stored(settings) == []


def test_a_chunked_body_over_the_limit_is_refused_while_streaming(api):
    url, settings = api
    boundary = "xyzBOUNDARYxyz"
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        for _ in range(3 * LIMIT // 65536):
            sent += 65536
            yield b"\xff" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    r = httpx.post(
        f"{url}/v1/galleries/g1/uploads",
        headers={**auth(UPLOAD_KEY), "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body(),
        timeout=30,
    )
    assert r.status_code == 413, r.text
    assert r.json()["reason"] == "file_too_large"
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert stored(settings) == []


def test_a_declared_length_over_the_limit_is_refused_before_reading(api):
    url, settings = api
    r = httpx.post(
        f"{url}/v1/galleries/g1/uploads",
        headers=auth(UPLOAD_KEY),
        files={"file": ("big.jpg", b"\0" * (LIMIT + 100_000))},
    )
    assert r.status_code == 413
    assert r.json() == {
        "reason": "file_too_large",
        "message": f"The file is larger than the limit of {LIMIT} bytes.",
    }
    assert stored(settings) == []


@pytest.mark.parametrize(
    ("path", "files", "headers", "status", "reason"),
    [
        ("/v1/galleries/g1/uploads", {"file": ("evil.exe", b"MZ")}, {}, 415, "unsupported_extension"),
        ("/v1/galleries/g1/uploads", {"file": ("noext", b"x")}, {}, 415, "unsupported_extension"),
        ("/v1/galleries/bad!id/uploads", {"file": ("a.jpg", b"x")}, {}, 422, "invalid_gallery_id"),
        ("/v1/galleries/_hidden/uploads", {"file": ("a.jpg", b"x")}, {}, 422, "invalid_gallery_id"),
        ("/v1/galleries/g1/uploads?profile=Bad%20Profile", {"file": ("a.jpg", b"x")}, {}, 422, "invalid_profile"),
        ("/v1/galleries/g1/uploads", {"other": (None, "x")}, {}, 400, "missing_file"),
        ("/v1/galleries/g1/uploads", {"file": ("a" * 2000 + ".jpg", b"x")}, {}, 400, "invalid_upload"),
        ("/v1/galleries/g1/uploads", None, {"Content-Type": "application/json"}, 400, "malformed_multipart"),
    ],
)  # fmt: skip
def test_refusals_carry_a_reason(api, path, files, headers, status, reason):
    url, settings = api
    if files is None:
        r = httpx.post(f"{url}{path}", headers={**auth(UPLOAD_KEY), **headers}, content=b"{}")
    else:
        r = httpx.post(f"{url}{path}", headers=auth(UPLOAD_KEY), files=files)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["reason"] == reason
    assert body["message"].endswith(".")
    assert stored(settings) == []


def test_a_truncated_multipart_body_is_400(api):
    url, settings = api
    boundary = "b0undary"
    r = httpx.post(
        f"{url}/v1/galleries/g1/uploads",
        headers={**auth(UPLOAD_KEY), "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
            "partial data with no closing boundary"
        ).encode(),
    )
    assert r.status_code == 400
    assert r.json()["reason"] == "malformed_multipart"
    assert stored(settings) == []


def fake_catalog(total: int | None, seen: list[str]) -> Starlette:
    async def images(request: Request) -> JSONResponse:
        seen.append(request.headers.get("authorization", ""))
        assert request.query_params["limit"] == "1"
        if total is None:
            return JSONResponse({"reason": "boom"}, 500)
        return JSONResponse({"items": [], "total": total})

    return Starlette(routes=[Route("/v1/galleries/{gallery_id}/images", images)])


def test_a_full_gallery_is_429_from_the_catalog_count(kafka_bootstrap, kafka_prefix, tmp_path):
    seen: list[str] = []
    with ServerThread(fake_catalog(3, seen)) as catalog:
        settings = settings_for(
            kafka_bootstrap,
            kafka_prefix,
            tmp_path / "objects",
            max_images_per_gallery=3,
            catalog_api_url=catalog.url,
        )
        with ServerThread(create_api(settings)) as server:
            wait_ready(server.url)
            r = httpx.post(
                f"{server.url}/v1/galleries/g1/uploads",
                headers=auth(UPLOAD_KEY),
                files={"file": ("a.jpg", b"x")},
            )
            assert r.status_code == 429
            assert r.json()["reason"] == "gallery_full"
            r = httpx.post(
                f"{server.url}/v1/galleries/g1/upload-urls",
                headers=auth(UPLOAD_KEY),
                json={"filename": "a.jpg"},
            )
            assert r.status_code == 429
    assert seen == [f"Bearer {UPLOAD_KEY}"] * 2  # the caller's key is forwarded
    assert stored(settings) == []


def test_job_urls_point_at_the_catalog_and_a_broken_catalog_skips_the_check(
    kafka_bootstrap, kafka_prefix, tmp_path, corpus_jpeg
):
    seen: list[str] = []
    with ServerThread(fake_catalog(None, seen)) as catalog:
        settings = settings_for(
            kafka_bootstrap,
            kafka_prefix,
            tmp_path / "objects",
            catalog_api_url=catalog.url + "/",
            catalog_api_key="catalog-read-key-0123456789",
        )
        with ServerThread(create_api(settings)) as server:
            wait_ready(server.url)
            r = httpx.post(
                f"{server.url}/v1/galleries/g1/uploads",
                headers=auth(UPLOAD_KEY),
                files={"file": ("a.jpg", corpus_jpeg.read_bytes())},
            )
    assert r.status_code == 202, r.text
    assert r.json()["job_url"] == f"{catalog.url}/v1/jobs/{r.json()['job_id']}"
    assert seen == ["Bearer catalog-read-key-0123456789"]


def test_presigning_is_unsupported_on_the_filesystem_store(api):
    url, _ = api
    r = httpx.post(
        f"{url}/v1/galleries/g1/upload-urls",
        headers=auth(UPLOAD_KEY),
        json={"filename": "a.jpg", "size": 10},
    )
    assert r.status_code == 409
    assert r.json()["reason"] == "presign_unsupported"


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"filename": "a.exe"}, 415, "unsupported_extension"),
        ({"filename": "a.jpg", "size": LIMIT + 1}, 413, "file_too_large"),
        ({"filename": "a.jpg", "content_type": "not a type"}, 422, "invalid_content_type"),
        ({"filename": ""}, 422, "invalid_request"),
        ({}, 422, "invalid_request"),
    ],
)
def test_upload_url_refusals(api, body, status, reason):
    url, _ = api
    r = httpx.post(f"{url}/v1/galleries/g1/upload-urls", headers=auth(UPLOAD_KEY), json=body)
    assert r.status_code == status, r.text
    assert r.json()["reason"] == reason


@pytest.mark.parametrize("upload_id", ["nonsense", "abc.def", "e30.AAAA"])
def test_completing_an_unknown_upload_is_404(api, upload_id):
    url, _ = api
    r = httpx.post(f"{url}/v1/uploads/{upload_id}/complete", headers=auth(UPLOAD_KEY))
    assert r.status_code == 404
    assert r.json()["reason"] == "upload_not_found"


def test_health_probes_and_openapi_need_no_key(api):
    url, _ = api
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}
    doc = httpx.get(f"{url}/openapi.json").json()
    assert set(doc["paths"]) >= {
        "/v1/galleries/{gallery_id}/uploads",
        "/v1/galleries/{gallery_id}/upload-urls",
        "/v1/uploads/{upload_id}/complete",
        "/healthz",
        "/readyz",
    }
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    r = httpx.get(f"{url}/no/such/path")
    assert r.status_code == 404
    assert r.json()["reason"] == "not_found"


def test_without_a_broker_the_api_is_not_ready_and_refuses_uploads(tmp_path):
    settings = settings_for(f"127.0.0.1:{free_port()}", "x.", tmp_path / "objects")
    with ServerThread(create_api(settings)) as server:
        r = httpx.get(f"{server.url}/readyz")
        assert r.status_code == 503
        assert r.json()["reason"] == "not_ready"
        assert r.headers["retry-after"] == "1"  # darkroom_common.api_errors: 503s say when
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        r = httpx.post(
            f"{server.url}/v1/galleries/g1/uploads",
            headers=auth(UPLOAD_KEY),
            files={"file": ("a.jpg", b"x")},
        )
        assert r.status_code == 503
        assert r.json()["reason"] == "broker_unavailable"
    assert stored(settings) == []
