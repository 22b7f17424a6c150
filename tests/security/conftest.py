"""The security suite's stack: every service on S3 with real, random secrets; one per run.

:func:`stack` (package scope) starts, on a fresh topic prefix and a fresh bucket of the
session's S3 server (s3proxy, which verifies SigV4):

* the four pipeline services as processes, logging to ``<tmp>/logs/<service>.log``;
* the upload API in this process (uvicorn in a thread), so ``caplog`` sees its records;
* a fake RAW provider following Imagen's API that refuses every call with 401 and echoes
  the ``x-api-key`` it received in its error body (a careless client would log it).

Every secret is random per run (:attr:`Stack.secrets`): an API key per scope plus one
with no scope, the provider key, the upload-id signing secret and the S3 secret key.
"""

from __future__ import annotations

import asyncio
import http.client
import http.cookiejar
import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from darkroom_common.storage import S3Store, StorageSettings
from darkroom_dev.local.jars import repo_root
from darkroom_dev.local.pipeline import LocalPipeline, start_local_pipeline
from darkroom_dev.testing.s3 import S3Server
from darkroom_ingest.api import create_api
from darkroom_ingest.settings import IngestSettings
from darkroom_ingest.testing import ServerThread, free_port, read_events, wait_ready
from darkroom_schemas import CatalogedV1

CORPUS = Path(os.environ.get("DARKROOM_CORPUS") or repo_root().parent / "shared" / "corpus")
"""The shared test images (as in ``tests/conftest.py``)."""
UPLOAD_LIMIT = 30 * 1024 * 1024
"""The upload API's ``max_upload_bytes`` (bytes)."""
SCOPES = ("read", "upload", "admin", "none")
"""One API key per scope; ``none`` is a valid key that holds no scope."""


def new_secret() -> str:
    """A random secret of 32 URL-safe characters (its first 8 are random too)."""
    return secrets.token_urlsafe(24)


def no_cookies_client() -> httpx.Client:
    """An HTTP client that keeps no cookie: each call carries only the credentials it is given.

    One client for many calls: a new httpx client costs ~0.1 s (its TLS context).
    """
    policy = http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
    return httpx.Client(timeout=60, cookies=http.cookiejar.CookieJar(policy))


@dataclass
class FakeProvider:
    """An Imagen-style RAW provider that answers every request 401, echoing the key it got."""

    keys_seen: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        """The ASGI app: ``{"detail": "invalid API key '<x-api-key>'"}`` with status 401."""

        async def refuse(request: Request) -> JSONResponse:
            key = request.headers.get("x-api-key", "")
            self.keys_seen.append(key)
            return JSONResponse({"detail": f"invalid API key {key!r}"}, 401)

        return Starlette(
            routes=[Route("/{path:path}", refuse, methods=["GET", "POST", "PUT", "DELETE"])]
        )


@dataclass
class Stack:
    """The running stack (see the module docstring) and how to reach each part of it."""

    bootstrap: str
    storage: StorageSettings
    keys: dict[str, str]
    provider_key: str
    token_secret: str
    pipeline: LocalPipeline
    upload_app: FastAPI
    upload_url: str
    provider: FakeProvider
    http: httpx.Client = field(default_factory=no_cookies_client)

    @property
    def prefix(self) -> str:
        """The deployment's topic prefix."""
        return self.pipeline.prefix

    @property
    def secrets(self) -> dict[str, str]:
        """Every secret the stack was given, by a name for messages."""
        values = {f"api key ({scope})": key for scope, key in self.keys.items()}
        assert self.storage.secret_access_key is not None
        values["S3 secret access key"] = self.storage.secret_access_key.get_secret_value()
        values["provider API key"] = self.provider_key
        values["upload id signing secret"] = self.token_secret
        return values

    def base(self, service: str) -> str:
        """Base URL of a pipeline service's web server (``ingest``, ``catalog``…)."""
        process = next(p for p in self.pipeline.services.processes if p.name == service)
        return f"http://127.0.0.1:{process.web_port}"

    @property
    def catalog(self) -> str:
        """Base URL of the catalog API."""
        return self.base("catalog")

    def auth(self, scope: str) -> dict[str, str]:
        """``Authorization`` header with the key of ``scope``."""
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    def upload(self, path: Path, gallery: str, *, filename: str | None = None) -> dict[str, Any]:
        """Upload ``path`` through the upload API with the upload key; return the 202 body."""
        r = self.http.post(
            f"{self.upload_url}/v1/galleries/{gallery}/uploads",
            headers=self.auth("upload"),
            files={"file": (filename or path.name, path.read_bytes())},
        )
        assert r.status_code == 202, r.text
        return dict(r.json())

    def cataloged(self, job_id: str, *, attempts: int = 1, timeout_s: float = 150) -> CatalogedV1:
        """Wait for the ``cataloged`` event of ``job_id``'s attempt ``attempts`` and return it."""
        events = read_events(
            self.bootstrap,
            f"{self.prefix}cataloged",
            1,
            timeout_s=timeout_s,
            match=lambda e: (
                isinstance(e, CatalogedV1) and e.job_id == job_id and e.attempts == attempts
            ),
        )
        assert events, (
            f"job {job_id} was not cataloged within {timeout_s} s: {self.pipeline.died()}"
        )
        return events[0]

    def objects(self, prefix: str = "") -> list[str]:
        """Every key in the stack's bucket under ``prefix``."""

        async def keys() -> list[str]:
            async with S3Store(self.storage) as store:
                return [info.key async for info in store.list(prefix)]

        return asyncio.run(keys())

    def log_files(self) -> list[Path]:
        """The pipeline services' log files."""
        return sorted((self.pipeline.root / "logs").glob("*.log"))


def raw_request(
    base: str,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, bytes]:
    """Send ``path`` byte for byte: no dot-segment removal or re-quoting, unlike httpx.

    Returns:
        ``(status, body)``.
    """
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


async def _make_bucket(storage: StorageSettings) -> None:
    async with S3Store(storage) as store:
        await store.ensure_bucket()


@pytest.fixture(scope="package")
def stack(
    kafka_bootstrap: str, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The security suite's running stack (see the module docstring)."""
    root = tmp_path_factory.mktemp("security")
    storage = s3_server.settings(f"sec-{uuid.uuid4().hex[:12]}", max_attempts=2)
    asyncio.run(_make_bucket(storage))
    keys = {scope: new_secret() for scope in SCOPES}
    api_keys = [
        {"name": f"sec-{s}", "key": k, "scopes": [] if s == "none" else [s]}
        for s, k in keys.items()
    ]
    provider, provider_key, token_secret = FakeProvider(), new_secret(), new_secret()
    assert storage.access_key_id is not None
    assert storage.secret_access_key is not None
    with ServerThread(provider.app()) as fake:
        env = {
            "DARKROOM_STORAGE__BACKEND": "s3",
            "DARKROOM_STORAGE__BUCKET": str(storage.bucket),
            "DARKROOM_STORAGE__ENDPOINT_URL": str(storage.endpoint_url),
            "DARKROOM_STORAGE__REGION": storage.region,
            "DARKROOM_STORAGE__ACCESS_KEY_ID": storage.access_key_id.get_secret_value(),
            "DARKROOM_STORAGE__SECRET_ACCESS_KEY": storage.secret_access_key.get_secret_value(),
            "DARKROOM_AUTH__API_KEYS": json.dumps(api_keys),
            "DARKROOM_RAW_PROVIDER_IMAGEN__BASE_URL": f"{fake.url}/v1",
            "DARKROOM_RAW_PROVIDER_IMAGEN__API_KEY": provider_key,
            "DARKROOM_CATALOG_SSE_WAIT_S": "1",
        }
        pipeline = start_local_pipeline(
            kafka_bootstrap,
            f"sec{uuid.uuid4().hex[:8]}.",
            root,
            partitions=2,
            env={"DARKROOM_RETRY_BASE_DELAY_S": "0.05", **env},
        )
        try:
            catalog = next(p for p in pipeline.services.processes if p.name == "catalog")
            port = free_port()
            settings = IngestSettings(
                kafka_bootstrap_servers=kafka_bootstrap,
                topic_prefix=pipeline.prefix,
                storage=storage,
                auth={"api_keys": api_keys},
                max_upload_bytes=UPLOAD_LIMIT,
                catalog_api_url=f"http://127.0.0.1:{catalog.web_port}",
                catalog_api_key=keys["read"],
                upload_token_secret=token_secret,
                api_port=port,
            )
            app = create_api(settings)
            with ServerThread(app, port) as api:
                wait_ready(api.url, timeout_s=120)
                deadline = time.monotonic() + 120
                catalog.wait_ok(f"http://127.0.0.1:{catalog.web_port}/readyz", deadline)
                for p in pipeline.services.processes:
                    p.wait_ok(f"http://127.0.0.1:{p.web_port}/metrics", deadline)
                stack = Stack(
                    kafka_bootstrap,
                    storage,
                    keys,
                    provider_key,
                    token_secret,
                    pipeline,
                    app,
                    api.url,
                    provider,
                )
                with stack.http:
                    yield stack
        finally:
            pipeline.stop()
