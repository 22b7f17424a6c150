"""The imagen provider against a local HTTP server implementing the contract (see conftest.py)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr, ValidationError

from darkroom_common.errors import ProviderUnavailable
from darkroom_common.metrics import Metrics
from darkroom_common.storage import FilesystemStore
from darkroom_raw_provider.imagen import ImagenProvider, normalise_status, retry_after_seconds
from darkroom_raw_provider.settings import ImagenSettings, RawProviderSettings
from darkroom_schemas import ProbeInfo, ValidatedV1

API_KEY = "sk-imagen-test-7f3a9c0e51d24b68"  # the fake server's key (testing.API_KEY)
RAW_KEY = "originals/g1/i1/sample.dng"
METRICS = Metrics.of(REGISTRY)


def settings_for(fake, **over) -> ImagenSettings:
    values = {
        "base_url": f"{fake.base_url}/v1",
        "api_key": SecretStr(API_KEY),
        "profile_key": 5700,
        "poll_initial_s": 0.01,
        "poll_max_s": 0.04,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        "deadline_s": 15,
        "http_retries": 3,
    }
    return ImagenSettings(**{**values, **over})


def raw_event(gallery: str = "g1", key: str = RAW_KEY) -> ValidatedV1:
    return ValidatedV1(
        job_id="i1", gallery_id=gallery, image_id="i1", correlation_id="c1",
        accepted=True, object_key=key, filename="sample.dng", sha256="0" * 64, is_raw=True,
        probe=ProbeInfo(format="dng", mime_type="image/x-adobe-dng", width=1, height=1, pixels=1),
    )  # fmt: skip


@pytest.fixture
async def store(tmp_path, corpus):
    store = FilesystemStore(tmp_path / "store")
    await store.put(RAW_KEY, (corpus / "raw" / "dng_lg-h815_skia_sample_1mp.dng").read_bytes())
    return store


class Sleeps:
    """A real sleep that records how long it was asked to wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(seconds)


async def develop(fake, store, **over) -> tuple[ValidatedV1, ImagenProvider, Sleeps]:
    sleeps = Sleeps()
    provider = ImagenProvider(store, settings_for(fake, **over), metrics=METRICS, sleep=sleeps)
    try:
        return await provider.develop(raw_event()), provider, sleeps
    finally:
        await provider.aclose()


def debug_logs(caplog) -> None:
    """Capture the provider's and the HTTP client's logs at DEBUG (headers included, if any)."""
    for name in ("httpx", "httpcore", "darkroom_raw_provider", "darkroom_common"):
        caplog.set_level(logging.DEBUG, logger=name)


def assert_no_secret(caplog, *texts: str) -> None:
    assert caplog.records  # the logs were captured
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
        assert API_KEY not in repr(record.__dict__)
    for text in texts:
        assert API_KEY not in text


async def test_happy_path_the_developed_jpeg_becomes_the_master(imagen, store, caplog):
    debug_logs(caplog)
    out, provider, sleeps = await develop(imagen, store)

    assert out.accepted, out.reason_message
    [project] = imagen.uploads
    assert out.provider_job_id == project
    assert (out.object_key, out.derived_from) == ("masters/g1/i1/master.jpg", RAW_KEY)
    master = await store.get_bytes(out.object_key)
    assert master == imagen.developed
    assert out.sha256 == hashlib.sha256(master).hexdigest()
    assert (out.probe.format, out.probe.width, out.probe.height) == ("jpeg", 1800, 1200)
    assert (await store.head(out.object_key)).metadata["provider-job-id"] == project
    # The RAW's bytes went to the presigned link, which never sees the API key.
    assert imagen.uploads[project] == await store.get_bytes(RAW_KEY)
    [put] = imagen.routes("put")
    assert "x-api-key" not in {k.lower() for k in put.headers}
    assert int(put.headers["Content-Length"]) == len(imagen.uploads[project])
    assert imagen.edits[project] == {"profile_key": 5700}
    assert [h.route for h in imagen.hits if "status" not in h.route] == [
        "create", "up-links", "put", "edit", "export", "down-links", "get",
    ]  # fmt: skip
    # Pending, In progress, In progress, Completed: capped exponential waits between polls.
    assert len(imagen.routes("edit-status")) == 3
    assert sleeps.calls[:2] == [0.01, 0.02]
    assert max(sleeps.calls) <= 0.04
    assert provider.client is not None
    assert provider.client.counters.retries == 0
    assert_no_secret(caplog)


async def test_slower_than_the_deadline_is_provider_timeout(imagen, store):
    imagen.never_done = True
    started = time.monotonic()
    out, _, _ = await develop(imagen, store, deadline_s=0.6)
    assert time.monotonic() - started < 5
    assert (out.accepted, out.reason_code) == (False, "provider_timeout")
    assert out.provider_job_id in imagen.uploads
    assert out.object_key == RAW_KEY
    assert not await store.exists("masters/g1/i1/master.jpg")  # the gallery is untouched
    assert len(imagen.routes("edit-status")) >= 3


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_429_is_retried_after_retry_after_then_succeeds(imagen, store):
    imagen.throttle["create"] = 2
    imagen.throttle["edit-status"] = 1
    imagen.retry_after = "1"
    created_429 = {"provider": "imagen", "operation": "project creation", "status": "429"}
    before = sample("darkroom_provider_requests_total", created_429)
    polls = sample("darkroom_provider_poll_seconds_count", {"provider": "imagen", "step": "edit"})
    out, provider, sleeps = await develop(imagen, store)
    # The metrics moved with the calls: two 429s counted, one edit polled to completion.
    assert sample("darkroom_provider_requests_total", created_429) == before + 2
    assert (
        sample("darkroom_provider_poll_seconds_count", {"provider": "imagen", "step": "edit"})
        == polls + 1
    )

    assert out.accepted, out.reason_message
    creates = imagen.routes("create")
    assert [h.status for h in creates] == [429, 429, 200]
    assert all(b.at - a.at >= 0.95 for a, b in itertools.pairwise(creates))
    assert [h.status for h in imagen.routes("edit-status")][:2] == [429, 200]
    assert provider.client is not None
    assert provider.client.counters.retries == 3
    assert sleeps.calls.count(1.0) == 3


async def test_retry_after_as_an_http_date_is_honoured(imagen, store):
    imagen.throttle["down-links"] = 1
    imagen.retry_after = lambda: format_datetime(
        datetime.now(UTC) + timedelta(seconds=2), usegmt=True
    )
    out, _, sleeps = await develop(imagen, store)
    assert out.accepted
    [first, second] = imagen.routes("down-links")
    assert second.at - first.at >= 0.9  # an HTTP date has one-second resolution
    assert any(0.9 <= s <= 2.0 for s in sleeps.calls)


def test_retry_after_parsing():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(" 0.5 ") == 0.5
    assert retry_after_seconds("Wed, 01 Jan 2025 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0  # past
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Completed", "COMPLETED"), ("in progress", "IN PROGRESS"), ("IN_PROGRESS", "IN PROGRESS"),
     ("failed", "FAILED"), ("  Pending ", "PENDING")],
)  # fmt: skip
def test_statuses_compare_case_insensitively(raw, expected):
    assert normalise_status(raw) == expected


async def test_5xx_is_retried_then_succeeds(imagen, store):
    imagen.errors["up-links"] = 2
    imagen.errors["get"] = 1
    imagen.errors["export"] = 1
    out, provider, _ = await develop(imagen, store)
    assert out.accepted, out.reason_message
    assert [h.status for h in imagen.routes("up-links")] == [503, 503, 200]
    assert [h.status for h in imagen.routes("get")] == [503, 200]
    assert provider.client is not None
    assert provider.client.counters.retries == 4


async def test_5xx_past_the_retries_raises_provider_unavailable(imagen, store, caplog):
    debug_logs(caplog)
    imagen.errors["create"] = 10
    with pytest.raises(ProviderUnavailable) as info:
        await develop(imagen, store, http_retries=2)
    assert info.value.retriable
    assert "HTTP 503" in str(info.value)
    assert len(imagen.routes("create")) == 3
    assert not await store.exists("masters/g1/i1/master.jpg")
    assert_no_secret(caplog, str(info.value))


async def test_failed_status_is_provider_failed(imagen, store):
    imagen.final_status["edit"] = "Failed"
    out, _, _ = await develop(imagen, store)
    assert (out.accepted, out.reason_code) == (False, "provider_failed")
    assert out.provider_job_id in imagen.uploads
    assert "FAILED" in out.reason_message
    assert not imagen.routes("export")
    assert not await store.exists("masters/g1/i1/master.jpg")


async def test_export_failed_is_provider_failed(imagen, store):
    imagen.final_status["export"] = "FAILED"
    out, _, _ = await develop(imagen, store)
    assert out.reason_code == "provider_failed"
    assert not imagen.routes("down-links")


async def test_wrong_api_key_is_a_permanent_auth_failure(imagen, store, caplog):
    debug_logs(caplog)
    imagen.api_key = "the-real-key"
    out, provider, _ = await develop(imagen, store)
    assert (out.accepted, out.reason_code) == (False, "provider_auth_failed")
    assert "HTTP 401" in out.reason_message
    assert len(imagen.hits) == 1  # no retry: another try cannot fix a key
    assert provider.client is not None
    assert provider.client.counters.retries == 0
    assert out.provider_job_id is None
    assert not await store.exists("masters/g1/i1/master.jpg")
    assert_no_secret(caplog, out.reason_message, out.model_dump_json())


async def test_a_non_jpeg_result_is_provider_bad_output(imagen, store):
    imagen.developed = b"<html>not an image</html>"
    out, _, _ = await develop(imagen, store)
    assert (out.accepted, out.reason_code) == (False, "provider_bad_output")
    assert not await store.exists("masters/g1/i1/master.jpg")


async def test_a_result_beyond_the_size_bound_is_provider_bad_output(imagen, store):
    out, _, _ = await develop(imagen, store, max_output_bytes=4096)
    assert out.reason_code == "provider_bad_output"


async def test_missing_original_is_a_rejection(imagen, store):
    await store.delete(RAW_KEY)
    out, _, _ = await develop(imagen, store)
    assert out.reason_code == "missing_original"
    assert not imagen.hits


async def test_without_a_key_the_provider_is_not_configured(imagen, store):
    provider = ImagenProvider(
        store, metrics=METRICS, settings=ImagenSettings(base_url=f"{imagen.base_url}/v1")
    )
    out = await provider.develop(raw_event())
    assert out.reason_code == "provider_not_configured"
    assert not imagen.hits


def test_the_key_comes_from_a_secrets_file_and_never_prints(tmp_path, monkeypatch):
    secret = tmp_path / "imagen_api_key"
    secret.write_text(f"{API_KEY}\n")
    monkeypatch.setenv("DARKROOM_RAW_PROVIDER_IMAGEN__API_KEY_FILE", str(secret))
    settings = RawProviderSettings()
    key = settings.imagen.key()
    assert key is not None
    assert key.get_secret_value() == API_KEY
    env = RawProviderSettings(imagen={"api_key": API_KEY})
    assert API_KEY not in repr(env)
    assert API_KEY not in str(env.model_dump())
    with pytest.raises(ValidationError, match="cannot read the Imagen API key file"):
        ImagenSettings(api_key_file=tmp_path / "missing")
