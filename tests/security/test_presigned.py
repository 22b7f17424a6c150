"""Presigned uploads through the upload API, against the real S3 server (s3proxy, SigV4).

Beyond ``services/ingest/tests/test_presign_s3.py`` (another key, another Content-Type,
an upload id signed with another secret) and ``libs/common/tests/storage/test_s3.py``
(tampered signature, expiry at the store level):

* the URL the API hands out works before its expiry (``presign_expiry_s`` = 2 s here) and
  is refused (403) after it;
* it covers one object only: another image's prefix, another bucket, another method, an
  added query parameter or a longer ``X-Amz-Expires`` are refused, and nothing is written;
* the signed ``upload_id`` is bound to its gallery, image and file name (an edited claim
  is refused), and expires (a correctly signed id past its expiry is refused even though
  the object exists).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from darkroom_common.storage import S3Store
from darkroom_ingest.api import create_api
from darkroom_ingest.settings import IngestSettings
from darkroom_ingest.testing import (
    KEYS,
    UPLOAD_KEY,
    ServerThread,
    auth,
    make_topics,
    new_prefix,
    read_events,
    wait_ready,
)
from darkroom_ingest.tokens import UploadClaims, sign

from .conftest import CORPUS, new_secret, no_cookies_client

pytestmark = [pytest.mark.kafka, pytest.mark.s3, pytest.mark.slow]

EXPIRY_S = 2
TOKEN_SECRET = new_secret()
DATA = (CORPUS / "jpeg" / "exif_canon_40d_makernote.jpg").read_bytes()
HTTP = no_cookies_client()


@pytest.fixture
def api(kafka_bootstrap, s3_store, s3_settings) -> Iterator[tuple[str, IngestSettings]]:
    """The upload API on the session's S3 server: 2 s presigned URLs, a known token secret."""
    prefix = new_prefix()
    make_topics(kafka_bootstrap, prefix)
    settings = IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        storage=s3_settings.model_copy(update={"presign_expiry_s": EXPIRY_S}),
        auth={"api_keys": KEYS},
        upload_token_secret=TOKEN_SECRET,
    )
    with ServerThread(create_api(settings)) as server:
        wait_ready(server.url)
        yield server.url, settings


def grant(url: str, gallery: str = "g1", filename: str = "a.jpg") -> dict[str, Any]:
    r = HTTP.post(
        f"{url}/v1/galleries/{gallery}/upload-urls",
        headers=auth(UPLOAD_KEY),
        json={"filename": filename},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True)) | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def complete(url: str, upload_id: str) -> httpx.Response:
    return HTTP.post(f"{url}/v1/uploads/{upload_id}/complete", headers=auth(UPLOAD_KEY))


async def test_a_presigned_put_works_before_its_expiry_and_is_refused_after(api, s3_store):
    url, _ = api
    early, late = grant(url), grant(url)
    assert f"X-Amz-Expires={EXPIRY_S}" in early["url"]
    left = (datetime.fromisoformat(early["expires_at"]) - datetime.now(UTC)).total_seconds()
    assert 0 < left <= EXPIRY_S + 1
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.put(early["url"], content=DATA)).status_code == 200
        expires = datetime.fromisoformat(late["expires_at"]).timestamp()
        await asyncio.sleep(max(0.0, expires - time.time()) + 1.5)
        refused = await http.put(late["url"], content=DATA)
    waited = time.time() - expires
    print(
        f"\npresigned PUT: 200 within its {EXPIRY_S} s; {refused.status_code} {waited:.1f} s after expiry"
    )
    assert refused.status_code == 403, refused.text
    assert await s3_store.get_bytes(early["object_key"]) == DATA
    assert not await s3_store.exists(late["object_key"])


async def test_a_presigned_url_covers_one_object_and_one_method(api, s3_store, s3_server):
    url, _ = api
    g = grant(url)
    other = grant(url, gallery="g2")
    victim = S3Store(s3_server.settings(f"victim-{uuid.uuid4().hex[:12]}"))
    async with victim, httpx.AsyncClient(timeout=30) as http:
        await victim.ensure_bucket()
        put_url = g["url"]
        attempts = {
            "another image's key": put_url.replace(g["object_key"], other["object_key"]),
            "another gallery": put_url.replace("/originals/g1/", "/originals/g2/"),
            "another bucket": put_url.replace(f"/{s3_store.bucket}/", f"/{victim.bucket}/"),
            "an added query parameter": with_query(put_url, acl="public-read"),
            "an added metadata parameter": with_query(put_url, **{"x-amz-meta-owner": "me"}),
            "a longer expiry": with_query(put_url, **{"X-Amz-Expires": "604800"}),
        }
        refused = {}
        for what, attempt in attempts.items():
            assert attempt != put_url, what
            r = await http.put(attempt, content=b"not yours")
            refused[what] = r.status_code
        for method in ("GET", "DELETE", "POST"):
            refused[f"method {method}"] = (await http.request(method, put_url)).status_code
        print(f"\nrefusals of one presigned PUT URL: {refused}")
        assert set(refused.values()) == {403}, refused
        assert [i.key async for i in victim.list()] == []
        assert [i.key async for i in s3_store.list()] == []
        assert (await http.put(put_url, content=DATA)).status_code == 200  # the URL itself works
        client = await victim.client()
        await client.delete_bucket(Bucket=victim.bucket)
    assert [i.key async for i in s3_store.list()] == [g["object_key"]]


def _claims(upload_id: str) -> dict[str, Any]:
    body = upload_id.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def _edited(upload_id: str, **changes: Any) -> str:
    mac = upload_id.split(".")[1]
    claims = json.dumps(_claims(upload_id) | changes, separators=(",", ":"), sort_keys=True)
    return f"{base64.urlsafe_b64encode(claims.encode()).rstrip(b'=').decode()}.{mac}"


def test_the_upload_id_is_bound_to_its_object_and_expires(api, kafka_bootstrap):
    url, settings = api
    issued = time.time()
    g = grant(url)
    claims = _claims(g["upload_id"])
    assert (claims["gallery_id"], claims["image_id"]) == ("g1", g["image_id"])
    assert abs(claims["expires_at"] - (issued + settings.upload_token_ttl_s)) < 30
    assert HTTP.put(g["url"], content=DATA).status_code == 200
    refusals = {
        "gallery edited": _edited(g["upload_id"], gallery_id="g2"),
        "image edited": _edited(g["upload_id"], image_id=uuid.uuid4().hex),
        "file name edited": _edited(g["upload_id"], filename="b.jpg"),
        "expiry extended": _edited(g["upload_id"], expires_at=int(issued) + 10 * 365 * 86400),
        "expired (signed)": sign(
            UploadClaims(**(claims | {"expires_at": int(time.time()) - 1})),
            TOKEN_SECRET.encode(),
        ),
        "another grant (nothing uploaded)": grant(url)["upload_id"],
    }
    answers = {what: complete(url, upload_id) for what, upload_id in refusals.items()}
    print(
        f"\nupload id refusals: { {w: (r.status_code, r.json()['message']) for w, r in answers.items()} }"
    )
    for what, r in answers.items():
        assert (r.status_code, r.json()["reason"]) == (404, "upload_not_found"), what
    assert "expired" in answers["expired (signed)"].json()["message"]
    assert "signature" in answers["gallery edited"].json()["message"]
    ok = complete(url, g["upload_id"])
    assert ok.status_code == 202, ok.text
    events = read_events(kafka_bootstrap, settings.topic("uploaded"), None)
    assert [(e.gallery_id, e.image_id, e.object_key) for e in events] == [
        ("g1", g["image_id"], g["object_key"])
    ]
