"""The catalog HTTP API against a real broker: the worker runs as a subprocess.

Pipeline events are produced by the test, step by step, so every state of a
job can be observed (nothing else runs: no ingest, no renderers).
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from darkroom_common.storage import FilesystemStore
from darkroom_schemas import GallerySettingsV1, ImageDeletedV1, UploadedV1

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(120)]


def _uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


KEYS: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _keys(catalog_service):
    KEYS.update(catalog_service.keys)


def auth(scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[scope]}"}


async def call(
    method: str, url: str, scope: str | None = "read", **kwargs: Any
) -> tuple[int, Any, Any]:
    headers = {**(auth(scope) if scope else {}), **kwargs.pop("headers", {})}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, headers=headers, **kwargs) as r,
    ):
        body = await r.read()
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = body
        return r.status, data, r.headers


async def until(check: Callable[[], Awaitable[Any]], timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


async def job_status(svc: Any, job_id: str, wanted: str, attempts: int = 1) -> dict[str, Any]:
    async def check() -> Any:
        status, body, _ = await call("GET", f"{svc.base}/v1/jobs/{job_id}")
        ok = status == 200 and body["status"] == wanted and body["attempts"] == attempts
        return body if ok else None

    return await until(check)  # type: ignore[no-any-return,unused-ignore]


async def test_probes_are_open_and_everything_else_needs_the_right_key(catalog_service):
    svc = catalog_service
    for path in ("/healthz", "/readyz", "/metrics"):
        status, _, _ = await call("GET", svc.base + path, scope=None)
        assert status == 200, path
    status, body, headers = await call("GET", f"{svc.base}/v1/jobs/nope", scope=None)
    assert (status, body["reason"]) == (401, "unauthenticated")
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, body, _ = await call(
        "GET", f"{svc.base}/v1/jobs/nope", scope=None, headers={"Authorization": "Bearer wrong"}
    )
    assert (status, body["reason"]) == (401, "unauthenticated")
    status, body, _ = await call("GET", f"{svc.base}/v1/jobs/nope", scope="upload")
    assert (status, body["reason"]) == (403, "forbidden")
    for method, path in (
        ("POST", "/v1/jobs/nope/retry"),
        ("POST", "/v1/jobs/nope/start"),
        ("DELETE", "/v1/images/nope"),
        ("PUT", "/v1/galleries/g/settings"),
    ):
        status, body, _ = await call(method, svc.base + path, scope="read")
        assert (status, body["reason"]) == (403, "forbidden"), path
    status, body, _ = await call("GET", f"{svc.base}/v1/jobs/nope")
    assert (status, body["reason"]) == (404, "job_not_found")
    status, body, _ = await call("GET", f"{svc.base}/v1/images/nope")
    assert (status, body["reason"]) == (404, "image_not_found")
    status, body, _ = await call("GET", f"{svc.base}/v1/jobs/nope/events")
    assert (status, body["reason"]) == (404, "job_not_found")


async def _read_sse(
    response: aiohttp.ClientResponse, out: list[tuple[str, dict[str, Any]]]
) -> None:
    event, data = "message", ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            out.append((event, json.loads(data)))
            event, data = "message", ""


async def test_sse_delivers_every_state_change_in_order_then_closes(catalog_service, flow):
    svc = catalog_service
    f = flow(_uid("img"), gallery_id=_uid("g"))
    f.ids["job_id"] = f.job_id = f.image_id
    seen: list[tuple[str, dict[str, Any]]] = []
    # The job does not exist yet when the stream opens: it waits for it (sse_wait_s).
    upload = asyncio.create_task(svc.produce([f.uploaded()]))
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{svc.base}/v1/jobs/{f.job_id}/events", headers=auth("read")) as stream,
    ):
        await upload
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        reader = asyncio.create_task(_read_sse(stream, seen))
        steps = [
            [f.validated(provider_job_id="prov-1")],
            [f.requested("thumb", 2), f.requested("medium", 2)],
            [f.done("thumb")],
            [f.done("medium")],
        ]
        await until(lambda: _grown(seen, 0), 20)
        for step in steps:
            count = len(seen)
            await svc.produce(step)
            if step is not steps[-1]:
                await until(functools.partial(_grown, seen, count), 20)
        await asyncio.wait_for(reader, 20)  # the server closes the stream after complete
    statuses = [data["status"] for _, data in seen]
    assert statuses[0] == "queued"
    assert statuses[-1] == "complete"
    assert [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s] == [
        "queued",
        "processing",
        "complete",
    ]
    done_counts = [
        sum(v["status"] == "done" for v in data["variants"].values()) for _, data in seen
    ]
    assert done_counts == sorted(done_counts)
    assert done_counts[-1] == 2
    assert all(event == "job" for event, _ in seen)

    status, job, _ = await call("GET", f"{svc.base}/v1/jobs/{f.job_id}")
    assert status == 200
    assert job["provider_job_id"] == "prov-1"
    assert job["variants"]["thumb"]["url"] == f"/v1/objects/variants/{f.image_id}/thumb-spec01.webp"
    assert job["completed_at"] is not None
    status, image, _ = await call("GET", f"{svc.base}/v1/images/{f.image_id}")
    assert status == 200
    assert image["thumbhash"] == "th-thumb"
    assert image["metadata"]["model"] == "EOS R5"
    assert set(image["variants"]) == {"thumb", "medium"}
    # A terminal job's stream sends its state once and closes.
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{svc.base}/v1/jobs/{f.job_id}/events", headers=auth("read")) as again,
    ):
        text = await asyncio.wait_for(again.text(), 10)
    assert text.count("event: job") == 1


async def _grown(seen: list[Any], count: int) -> bool:
    return len(seen) > count


async def test_retry_only_a_failed_job_and_start_only_a_queued_one(catalog_service, flow):
    svc = catalog_service
    f = flow(_uid("img"), gallery_id=_uid("g"))
    f.ids["job_id"] = f.job_id = f.image_id
    await svc.produce(
        [f.uploaded(), f.validated(accepted=False, reason_code="truncated", reason_message="cut")]
    )
    job = await job_status(svc, f.job_id, "failed")
    assert job["error"] == {"code": "truncated", "message": "cut"}
    url = f"{svc.base}/v1/jobs/{f.job_id}"

    status, body, _ = await call("POST", f"{url}/start", scope="admin")
    assert (status, body["reason"]) == (409, "not_queued")
    status, body, _ = await call("POST", f"{url}/retry", scope="admin")
    assert (status, body) == (202, {"job_id": f.job_id, "attempt": 2, "status": "queued"})
    await job_status(svc, f.job_id, "queued", attempts=2)
    status, body, _ = await call("POST", f"{url}/retry", scope="admin")
    assert (status, body["reason"]) == (409, "not_failed")

    status, body, _ = await call("POST", f"{url}/start", scope="admin")
    assert status == 202
    uploads = [
        e for e in await svc.read("uploaded") if isinstance(e, UploadedV1) and e.job_id == f.job_id
    ]
    assert [(e.source, e.attempt) for e in uploads] == [("api", 1), ("retry", 2), ("start", 2)]
    assert {(e.object_key, e.filename, e.size_bytes) for e in uploads} == {
        (f"originals/{f.gallery_id}/{f.image_id}/IMG_0001.JPG", "IMG_0001.JPG", 4_000_000)
    }
    status, body, _ = await call("POST", f"{svc.base}/v1/jobs/nope/retry", scope="admin")
    assert (status, body["reason"]) == (404, "job_not_found")


async def test_gallery_pages_objects_and_delete(catalog_service, flow):
    svc = catalog_service
    gallery = _uid("g")
    flows = [flow(_uid(f"img{i}"), gallery_id=gallery) for i in range(4)]
    for f in flows:
        f.ids["job_id"] = f.job_id = f.image_id
    events: list[Any] = []
    for f in flows[:3]:
        events += f.happy(("thumb",))
    bad = flows[3]
    events += [bad.uploaded(), bad.validated(accepted=False, reason_code="unsupported_format")]
    await svc.produce(events)
    store = FilesystemStore(svc.objects)
    await store.put(
        f"variants/{flows[0].image_id}/thumb-spec01.webp",
        b"RIFFxxxxWEBP",
        content_type="image/webp",
    )
    images = f"{svc.base}/v1/galleries/{gallery}/images"

    async def listed(total: int) -> Any:
        status, body, _ = await call("GET", images)
        return body if status == 200 and body["total"] == total else None

    await until(lambda: listed(4))
    status, first, _ = await call("GET", f"{images}?limit=2")
    assert status == 200
    assert len(first["images"]) == 2
    assert first["next_cursor"]
    status, second, _ = await call("GET", f"{images}?limit=2&cursor={first['next_cursor']}")
    assert second["next_cursor"] is None
    items = first["images"] + second["images"]
    assert sorted(i["image_id"] for i in items) == sorted(f.image_id for f in flows)
    by_id = {i["image_id"]: i for i in items}
    assert by_id[bad.image_id]["status"] == "failed"
    assert by_id[bad.image_id]["error"]["code"] == "unsupported_format"
    shown = by_id[flows[0].image_id]
    assert shown["status"] == "complete"
    assert shown["dominant_colour"]
    assert shown["thumbhash"]
    assert shown["metadata"]
    for query, reason in (
        ("limit=0", "invalid_limit"),
        ("limit=x", "invalid_limit"),
        ("cursor=%%%", "invalid_cursor"),
    ):
        status, body, _ = await call("GET", f"{images}?{query}")
        assert (status, body["reason"]) == (400, reason), query
    status, empty, _ = await call("GET", f"{svc.base}/v1/galleries/{_uid('none')}/images")
    assert (status, empty["total"], empty["images"]) == (200, 0, [])

    thumb_url = svc.base + shown["variants"]["thumb"]["url"]
    status, body, headers = await call("GET", thumb_url)
    assert (status, body, headers["Content-Type"]) == (200, b"RIFFxxxxWEBP", "image/webp")
    status, _, _ = await call("GET", thumb_url, scope=None)
    assert status == 401
    status, body, _ = await call("GET", f"{svc.base}/v1/objects/originals/{gallery}/x.jpg")
    assert (status, body["reason"]) == (404, "object_not_found")
    status, body, _ = await call("GET", f"{svc.base}/v1/objects/variants/none/x.webp")
    assert (status, body["reason"]) == (404, "object_not_found")

    gone = flows[1]
    status, body, _ = await call("DELETE", f"{svc.base}/v1/images/{gone.image_id}", scope="admin")
    assert status == 202
    await until(lambda: listed(3))

    async def deleted() -> Any:
        status, body, _ = await call("GET", f"{svc.base}/v1/images/{gone.image_id}")
        return status == 404 and body["reason"] == "image_deleted"

    await until(deleted)
    status, body, _ = await call("GET", f"{svc.base}/v1/jobs/{gone.image_id}")
    assert (status, body["reason"]) == (404, "job_deleted")
    status, _, _ = await call("DELETE", f"{svc.base}/v1/images/{gone.image_id}", scope="admin")
    assert status == 202  # idempotent
    status, body, _ = await call("POST", f"{svc.base}/v1/jobs/{gone.image_id}/retry", scope="admin")
    assert (status, body["reason"]) == (404, "job_deleted")
    status, body, _ = await call("DELETE", f"{svc.base}/v1/images/nope", scope="admin")
    assert (status, body["reason"]) == (404, "image_not_found")
    deletes = [e for e in await svc.read("image-deleted") if isinstance(e, ImageDeletedV1)]
    assert [(e.image_id, e.requested_by) for e in deletes if e.gallery_id == gallery] == [
        (gone.image_id, "admin")
    ]
    # A late cataloged replay of the deleted image does not bring it back.
    await svc.produce(gone.happy(("thumb",)))
    await asyncio.sleep(2)
    assert await listed(3)


async def test_gallery_settings_round_trip_through_the_compacted_topic(catalog_service):
    svc = catalog_service
    gallery = _uid("g")
    url = f"{svc.base}/v1/galleries/{gallery}/settings"
    status, body, _ = await call("GET", url)
    assert (status, body["processing_mode"], body["processing_provider"]) == (200, "auto", "local")
    wanted = {
        "processing_provider": "imagen",
        "processing_mode": "manual",
        "profile": "default",
        "max_concurrent_jobs": 3,
    }
    status, body, _ = await call("PUT", url, scope="admin", json=wanted)
    assert (status, body) == (200, {"gallery_id": gallery, **wanted})
    status, body, _ = await call("GET", url)
    assert body == {"gallery_id": gallery, **wanted}
    records = [
        e
        for e in await svc.read("gallery-settings")
        if isinstance(e, GallerySettingsV1) and e.gallery_id == gallery
    ]
    assert [(r.processing_mode, r.max_concurrent_jobs) for r in records] == [("manual", 3)]
    for payload, reason, code in (
        ({"processing_mode": "sometimes"}, "invalid_settings", 422),
        ({"max_concurrent_jobs": 0}, "invalid_settings", 422),
        ({"colour": "red"}, "invalid_settings", 422),
        ({"profile": "nosuchprofile"}, "unknown_profile", 422),
        ([1, 2], "invalid_json", 400),
    ):
        status, body, _ = await call("PUT", url, scope="admin", json=payload)
        assert (status, body["reason"]) == (code, reason), payload
    status, body, _ = await call("PUT", url, scope="admin", data=b"{not json")
    assert (status, body["reason"]) == (400, "invalid_json")
    status, body, _ = await call("GET", f"{svc.base}/v1/galleries/-bad-/settings")
    assert (status, body["reason"]) == (400, "invalid_gallery_id")


async def test_gallery_page_auth_and_escaping(catalog_service, flow):
    svc = catalog_service
    gallery = _uid("g")
    f = flow(_uid("img"), gallery_id=gallery)
    f.ids["job_id"] = f.job_id = f.image_id
    evil = "<script>alert(1)</script>.jpg"
    await svc.produce(
        [
            f.uploaded(filename=evil),
            f.validated(
                accepted=False, reason_code="truncated", reason_message="<b>cut</b>", filename=evil
            ),
        ]
    )
    await job_status(svc, f.job_id, "failed")
    page = f"{svc.base}/galleries/{gallery}"
    status, _, _ = await call("GET", page, scope=None)
    assert status == 401
    status, _, _ = await call("GET", f"{page}?key=wrong-key-0123456789", scope=None)
    assert status == 401

    # ?key= becomes the cookie and leaves the URL (history, Referer) at once.
    status, _, headers = await call(
        "GET", f"{page}?cursor=0&key={KEYS['read']}", scope=None, allow_redirects=False
    )
    assert status == 303
    assert headers["Location"] == f"/galleries/{gallery}?cursor=0"
    assert f"darkroom_key={KEYS['read']}" in headers["Set-Cookie"]
    assert "HttpOnly" in headers["Set-Cookie"]
    assert "SameSite=Strict" in headers["Set-Cookie"]
    assert headers["Referrer-Policy"] == "no-referrer"

    async def rendered() -> Any:
        status, body, headers = await call(
            "GET", page, scope=None, cookies={"darkroom_key": KEYS["read"]}
        )
        return (body, headers) if status == 200 and b"truncated" in body else None

    body, headers = await until(rendered)
    assert b"<script>alert(1)" not in body
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;.jpg" in body
    assert b"&lt;b&gt;cut&lt;/b&gt;" in body
    assert b'class="retry"' not in body  # a read key gets no Retry button
    assert headers["Referrer-Policy"] == "no-referrer"
    # The page's retry action needs its header and an admin cookie.
    retry = f"{page}/jobs/{f.job_id}/retry"
    status, body, _ = await call("POST", retry, scope=None, cookies={"darkroom_key": KEYS["admin"]})
    assert (status, body["reason"]) == (403, "forbidden")
    status, body, _ = await call(
        "POST",
        retry,
        scope=None,
        cookies={"darkroom_key": KEYS["read"]},
        headers={"X-Darkroom-Page": "1"},
    )
    assert (status, body["reason"]) == (403, "forbidden")
