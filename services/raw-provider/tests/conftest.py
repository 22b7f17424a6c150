"""A local HTTP server implementing the Imagen-style RAW provider contract, for the provider tests.

It serves the API under ``/v1`` and the presigned upload/download links itself
(``/links/…``), records every request, and can be told to be slow, to throttle
(429 with ``Retry-After``), to fail with 5xx, or to report FAILED.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

CORPUS = Path(
    os.environ.get("DARKROOM_CORPUS") or Path(__file__).resolve().parents[4] / "shared" / "corpus"
)
API_KEY = "sk-imagen-test-7f3a9c0e51d24b68"
DEVELOPED = CORPUS / "orientation" / "Landscape_1.jpg"


@dataclass
class Hit:
    """One request the server saw."""

    route: str
    method: str
    path: str
    at: float
    status: int
    headers: dict[str, str]


@dataclass
class FakeImagen:
    """The server's behaviour (set by a test before it runs) and what it saw."""

    api_key: str = API_KEY
    polls_until_done: int = 2
    final_status: dict[str, str] = field(
        default_factory=lambda: {"edit": "Completed", "export": "COMPLETED"}
    )
    never_done: bool = False
    throttle: Counter[str] = field(default_factory=Counter)
    retry_after: str | Callable[[], str] = "1"
    errors: Counter[str] = field(default_factory=Counter)
    developed: bytes = b""
    hits: list[Hit] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    edits: dict[str, dict] = field(default_factory=dict)
    polls: Counter[str] = field(default_factory=Counter)
    base_url: str = ""

    def routes(self, name: str) -> list[Hit]:
        """The hits of route ``name``, in order."""
        return [h for h in self.hits if h.route == name]

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024**2)
        r = app.router
        r.add_post("/v1/projects/", self._create, name="create")
        r.add_post(
            "/v1/projects/{p}/get_temporary_upload_links", self._upload_links, name="up-links"
        )
        r.add_put("/links/up/{p}/{name}", self._put, name="put")
        r.add_post("/v1/projects/{p}/edit", self._edit, name="edit")
        r.add_get("/v1/projects/{p}/edit/status", self._status, name="edit-status")
        r.add_post("/v1/projects/{p}/export", self._export, name="export")
        r.add_get("/v1/projects/{p}/export/status", self._status, name="export-status")
        r.add_get(
            "/v1/projects/{p}/export/get_temporary_download_links",
            self._download_links,
            name="down-links",
        )
        r.add_get("/links/down/{p}/{name}", self._get, name="get")
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler) -> web.StreamResponse:
        route = request.match_info.route.name or "?"
        if request.path.startswith("/v1/") and request.headers.get("x-api-key") != self.api_key:
            response: web.StreamResponse = web.json_response(
                {"detail": "invalid api key"}, status=401
            )
        elif self.throttle[route] > 0:
            self.throttle[route] -= 1
            response = web.json_response(
                {"detail": "slow down"},
                status=429,
                headers={
                    "Retry-After": self.retry_after
                    if isinstance(self.retry_after, str)
                    else self.retry_after()
                },
            )
        elif self.errors[route] > 0:
            self.errors[route] -= 1
            response = web.json_response({"detail": "upstream hiccup"}, status=503)
        else:
            response = await handler(request)
        self.hits.append(
            Hit(
                route,
                request.method,
                request.path,
                time.monotonic(),
                response.status,
                dict(request.headers),
            )
        )
        return response

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        assert body.get("name")
        return web.json_response({"data": {"project_uuid": str(uuid.uuid4())}})

    async def _upload_links(self, request: web.Request) -> web.Response:
        p = request.match_info["p"]
        files = (await request.json())["files_list"]
        return web.json_response(
            {
                "data": [
                    {"file_name": f["file_name"], "upload_link": f"{self.base_url}/links/up/{p}/{f['file_name']}?sig=abc"}
                    for f in files
                ]
            }
        )  # fmt: skip

    async def _put(self, request: web.Request) -> web.Response:
        self.uploads[request.match_info["p"]] = await request.read()
        return web.Response(status=200)

    async def _edit(self, request: web.Request) -> web.Response:
        p = request.match_info["p"]
        if p not in self.uploads:
            return web.json_response({"detail": "no files uploaded"}, status=400)
        self.edits[p] = await request.json()
        return web.json_response({"data": {"message": "started"}})

    async def _export(self, request: web.Request) -> web.Response:
        return web.json_response({"data": {"message": "started"}})

    async def _status(self, request: web.Request) -> web.Response:
        step = "edit" if request.match_info.route.name == "edit-status" else "export"
        key = f"{request.match_info['p']}:{step}"
        self.polls[key] += 1
        n = self.polls[key]
        if self.never_done or n <= self.polls_until_done:
            status = "Pending" if n == 1 else "IN_PROGRESS"
        else:
            status = self.final_status[step]
        return web.json_response({"data": {"status": status, "progress": min(100, n * 30)}})

    async def _download_links(self, request: web.Request) -> web.Response:
        p = request.match_info["p"]
        link = f"{self.base_url}/links/down/{p}/developed.jpg?sig=abc"
        return web.json_response(
            {"data": {"files_list": [{"file_name": "developed.jpg", "download_link": link}]}}
        )

    async def _get(self, request: web.Request) -> web.Response:
        return web.Response(body=self.developed, content_type="image/jpeg")


@pytest_asyncio.fixture
async def imagen() -> AsyncIterator[FakeImagen]:
    """A running fake provider on 127.0.0.1 (a free port); ``imagen.base_url`` + ``/v1`` is the API."""
    fake = FakeImagen(developed=DEVELOPED.read_bytes())
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.base_url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
def corpus() -> Path:
    """The shared corpus folder."""
    return CORPUS
