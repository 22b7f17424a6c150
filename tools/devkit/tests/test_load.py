"""The load driver's clients: how uploads are spread over galleries and which refusals are retried.

The HTTP side runs against ``httpx.MockTransport`` playing the upload API's
documented answers; ``tests/test_load.py`` runs the same code against the real stack.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from darkroom_dev.load import MAX_ATTEMPTS, Upload, percentile, plan, post_upload

PHOTOS = [Path(f"p{i}.jpg") for i in range(10)]


def test_plan_spreads_uploads_so_no_gallery_gets_a_photo_twice():
    clients = plan(1000, 100, PHOTOS, "run")
    uploads = [u for c in clients for u in c]
    assert len(clients) == 100
    assert {len(c) for c in clients} == {10}
    assert len(uploads) == 1000
    pairs = [(u.gallery_id, u.path) for u in uploads]
    assert len(set(pairs)) == len(pairs)
    assert len({u.gallery_id for u in uploads}) == 100
    # More uploads than photos per client: the client moves on to a new gallery.
    more = plan(25, 1, PHOTOS, "run")[0]
    assert [u.gallery_id for u in more[9:11]] == ["run-c0-g0", "run-c0-g1"]
    assert len({(u.gallery_id, u.path) for u in more}) == 25
    assert len(plan(3, 100, PHOTOS, "run")) == 3  # never an idle client
    with pytest.raises(ValueError, match="at least one"):
        plan(0, 1, PHOTOS, "run")


def refusal(status: int, reason: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"reason": reason, "message": "refused"}
    return httpx.Response(status, json=body, headers=headers)


def accepted() -> httpx.Response:
    return httpx.Response(202, json={"job_id": "j" * 32, "image_id": "j" * 32})


async def post(answers: list[Callable[[], httpx.Response]]) -> tuple[Upload, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]()

    upload = Upload(0, "g1", Path("photo.jpg"))
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(handler), base_url="http://api"
    ) as http:
        await post_upload(http, upload, b"\xff\xd8jpeg bytes")
    return upload, seen


async def test_a_passing_503_is_retried_and_the_retry_counted():
    upload, seen = await post([lambda: refusal(503, "broker_unavailable"), accepted])
    assert upload.accepted
    assert upload.job_id == "j" * 32
    assert upload.retried == ["503 broker_unavailable"]
    assert len(seen) == 2
    assert seen[0].url.path == "/v1/galleries/g1/uploads"
    assert seen[0].headers["content-type"].startswith("multipart/form-data; boundary=")
    assert b'name="file"; filename="photo.jpg"' in seen[0].content
    assert b"\xff\xd8jpeg bytes" in seen[0].content


async def test_429_with_retry_after_is_retried_without_it_is_final():
    upload, seen = await post(
        [lambda: refusal(429, "rate_limited", {"Retry-After": "0"}), accepted]
    )
    assert upload.accepted
    assert upload.retried == ["429 rate_limited"]
    upload, seen = await post([lambda: refusal(429, "gallery_full")])
    assert not upload.accepted
    assert (upload.status, upload.reason, upload.retried, len(seen)) == (429, "gallery_full", [], 1)


async def test_final_refusals_and_the_attempt_cap():
    upload, seen = await post([lambda: refusal(415, "unsupported_extension")])
    assert (upload.status, upload.reason, len(seen)) == (415, "unsupported_extension", 1)
    upload, seen = await post([lambda: refusal(503, "something_else")])
    assert (upload.status, len(seen)) == (503, 1)
    busy = [lambda: refusal(429, "rate_limited", {"Retry-After": "0"})] * MAX_ATTEMPTS
    upload, seen = await post(busy)
    assert (upload.status, len(seen), len(upload.retried)) == (429, MAX_ATTEMPTS, MAX_ATTEMPTS - 1)
    upload, _ = await post([lambda: httpx.Response(502, text="bad gateway")])
    assert upload.reason == "http_502"


async def test_a_transport_error_is_final_never_a_second_post():
    def fail() -> httpx.Response:
        raise httpx.ReadTimeout("no answer")

    upload, seen = await post([fail, accepted])
    assert (upload.status, upload.reason, len(seen)) == (None, "transport:ReadTimeout", 1)
    assert upload.answered >= upload.started > 0


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1.0)) == (
        51.0,
        99.0,
        100.0,
    )
    assert math.isnan(percentile([], 0.5))
