"""Presigned uploads against the real S3 server (s3proxy) and the real broker."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from darkroom_ingest.api import create_api
from darkroom_ingest.settings import IngestSettings
from darkroom_ingest.testing import KEYS, UPLOAD_KEY, ServerThread, auth, read_events, wait_ready

pytestmark = [pytest.mark.kafka, pytest.mark.s3]


@pytest.fixture
def api(kafka_bootstrap, kafka_prefix, s3_store, s3_settings):
    settings = IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=kafka_prefix,
        storage=s3_settings.model_copy(update={"presign_expiry_s": 120}),
        auth={"api_keys": KEYS},
        max_upload_bytes=100_000,
        upload_token_secret="a-shared-secret-for-every-api-instance",
    )
    with ServerThread(create_api(settings)) as server:
        wait_ready(server.url)
        yield server.url, settings


def test_presigned_put_then_complete_produces_uploaded(api, s3_store, corpus_jpeg, kafka_bootstrap):
    url, settings = api
    data = corpus_jpeg.read_bytes()[:90_000]
    r = httpx.post(
        f"{url}/v1/galleries/g1/upload-urls",
        headers=auth(UPLOAD_KEY),
        json={"filename": "Beach Day.jpg", "content_type": "image/jpeg", "size": len(data), "profile": "web"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    grant = r.json()
    assert grant["object_key"] == f"originals/g1/{grant['image_id']}/Beach_Day.jpg"
    assert "X-Amz-Expires=120" in grant["url"]
    assert grant["complete_url"].endswith(f"/v1/uploads/{grant['upload_id']}/complete")

    early = httpx.post(f"{url}/v1/uploads/{grant['upload_id']}/complete", headers=auth(UPLOAD_KEY))
    assert early.status_code == 404
    assert early.json()["reason"] == "upload_not_found"

    # the URL is scoped to its key and content type
    other = grant["url"].replace("Beach_Day.jpg", "Other.jpg")
    assert httpx.put(other, content=data, headers=grant["headers"]).status_code == 403
    assert (
        httpx.put(grant["url"], content=data, headers={"Content-Type": "text/plain"}).status_code
        == 403
    )
    put = httpx.put(grant["url"], content=data, headers=grant["headers"])
    assert put.status_code == 200, put.text

    r = httpx.post(f"{url}/v1/uploads/{grant['upload_id']}/complete", headers=auth(UPLOAD_KEY))
    assert r.status_code == 202, r.text
    assert r.json()["job_id"] == grant["image_id"]
    (event,) = read_events(
        kafka_bootstrap,
        settings.topic("uploaded"),
        1,
        match=lambda e: e.image_id == grant["image_id"],
    )
    assert (event.source, event.size_bytes, event.profile, event.filename) == (
        "presigned",
        len(data),
        "web",
        "Beach Day.jpg",
    )


async def test_a_presigned_object_over_the_limit_is_refused_and_removed(api, s3_store):
    url, _ = api
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{url}/v1/galleries/g1/upload-urls", headers=auth(UPLOAD_KEY),
                              json={"filename": "big.jpg"})  # fmt: skip
        grant = r.json()
        assert (await client.put(grant["url"], content=b"\0" * 100_001)).status_code == 200
        r = await client.post(
            f"{url}/v1/uploads/{grant['upload_id']}/complete", headers=auth(UPLOAD_KEY)
        )
    assert r.status_code == 413
    assert r.json()["reason"] == "file_too_large"
    assert not await s3_store.exists(grant["object_key"])


def test_an_upload_id_signed_with_another_secret_is_404(
    api, kafka_bootstrap, kafka_prefix, s3_settings
):
    url, settings = api
    grant = httpx.post(f"{url}/v1/galleries/g1/upload-urls", headers=auth(UPLOAD_KEY),
                       json={"filename": "a.jpg"}).json()  # fmt: skip
    other = settings.model_copy(
        update={"upload_token_secret": SecretStr("another-secret-0123456789")}
    )
    with ServerThread(create_api(other)) as server:
        wait_ready(server.url)
        r = httpx.post(
            f"{server.url}/v1/uploads/{grant['upload_id']}/complete", headers=auth(UPLOAD_KEY)
        )
    assert r.status_code == 404
    assert r.json()["reason"] == "upload_not_found"
