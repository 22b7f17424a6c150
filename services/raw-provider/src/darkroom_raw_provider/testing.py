"""A local HTTP server implementing the Imagen-style RAW provider contract, for tests.

It serves the API under ``/v1`` and the presigned upload/download links itself
(``/links/…``), records every request, and can be told to be slow, to throttle
(429 with ``Retry-After``, per route or for a time window), to fail with 5xx,
or to report FAILED. The provider unit tests use it in-process; the end-to-end
tests run it on a real port (:func:`serve`) for the raw-provider process::

    fake = FakeImagen(developed=jpeg_bytes)
    async with serve(fake) as base_url:      # the API is base_url + "/v1"
        ...

Importing this module needs no pytest.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_KEY = "sk-imagen-test-7f3a9c0e51d24b68"
"""The key the fake accepts by default (``x-api-key``)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Hit:
    """One request the server saw.

    Attributes:
        route: the route name (``create``, ``up-links``, ``put``, ``edit``,
            ``edit-status``, ``export``, ``export-status``, ``down-links``, ``get``).
        method, path: of the request.
        at: ``time.monotonic()`` when it was answered.
        status: the HTTP status answered.
        headers: the request's headers.
        project_name: the ``name`` the project was created with (set for
            ``create`` and every route under ``/projects/{uuid}``), else ``None``.
    """

    route: str
    method: str
    path: str
    at: float
    status: int
    headers: dict[str, str]
    project_name: str | None = None


@dataclass
class FakeImagen:
    """The server's behaviour (set by a test, also while it runs) and what it saw.

    Attributes:
        api_key: the accepted ``x-api-key``; any other gets 401.
        polls_until_done: status polls answered Pending / IN_PROGRESS before the final status.
        final_status: per step (``edit``, ``export``), the status after those polls.
        never_done: every project stays IN_PROGRESS (slower than any deadline).
        stall_files: a project whose uploaded file has one of these names stays IN_PROGRESS.
        throttle: route name → how many of its next requests get 429.
        throttle_until: every API request until this ``time.monotonic()`` gets 429.
        throttle_first_s: when > 0 and ``throttle_until`` is unset, the first API
            request sets ``throttle_until`` to this many seconds later.
        retry_after: the ``Retry-After`` value of a 429 (or a function returning it).
        errors: route name → how many of its next requests get 503.
        developed: the bytes of the developed JPEG every export delivers.
        hits, uploads, edits, polls, names: what the server saw (uploads and
            edits by project uuid; polls by ``<uuid>:<step>``; names: project
            uuid → the name it was created with).
        base_url: ``http://127.0.0.1:<port>`` once serving.
    """

    api_key: str = API_KEY
    polls_until_done: int = 2
    final_status: dict[str, str] = field(
        default_factory=lambda: {"edit": "Completed", "export": "COMPLETED"}
    )
    never_done: bool = False
    stall_files: set[str] = field(default_factory=set)
    throttle: Counter[str] = field(default_factory=Counter)
    throttle_until: float = 0.0
    throttle_first_s: float = 0.0
    retry_after: str | Callable[[], str] = "1"
    errors: Counter[str] = field(default_factory=Counter)
    developed: bytes = b""
    hits: list[Hit] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    upload_names: dict[str, str] = field(default_factory=dict)
    edits: dict[str, dict[str, Any]] = field(default_factory=dict)
    polls: Counter[str] = field(default_factory=Counter)
    names: dict[str, str] = field(default_factory=dict)
    base_url: str = ""

    def routes(self, name: str) -> list[Hit]:
        """The hits of route ``name``, in order."""
        return [h for h in self.hits if h.route == name]

    def app(self) -> web.Application:
        """Return the aiohttp application serving the contract."""
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

    def _throttled(self, route: str) -> bool:
        if self.throttle[route] > 0:
            self.throttle[route] -= 1
            return True
        if route in ("put", "get"):  # presigned links, not the API
            return False
        if self.throttle_first_s > 0 and not self.throttle_until:
            self.throttle_until = time.monotonic() + self.throttle_first_s
        return time.monotonic() < self.throttle_until

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.name or "?"
        name = self.names.get(request.match_info.get("p", ""))
        if route == "create":
            with contextlib.suppress(ValueError):
                name = (await request.json()).get("name")  # the body is cached for the handler
        response: web.StreamResponse
        if request.path.startswith("/v1/") and request.headers.get("x-api-key") != self.api_key:
            response = web.json_response({"detail": "invalid api key"}, status=401)
        elif self._throttled(route):
            retry_after = (
                self.retry_after if isinstance(self.retry_after, str) else self.retry_after()
            )
            response = web.json_response(
                {"detail": "slow down"}, status=429, headers={"Retry-After": retry_after}
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
                name,
            )
        )
        return response

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not body.get("name"):
            return web.json_response({"detail": "a project needs a name"}, status=400)
        project = str(uuid.uuid4())
        self.names[project] = body["name"]
        return web.json_response({"data": {"project_uuid": project}})

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
        p = request.match_info["p"]
        self.uploads[p] = await request.read()
        self.upload_names[p] = request.match_info["name"]
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
        p = request.match_info["p"]
        step = "edit" if request.match_info.route.name == "edit-status" else "export"
        key = f"{p}:{step}"
        self.polls[key] += 1
        n = self.polls[key]
        stalled = self.never_done or self.upload_names.get(p) in self.stall_files
        if stalled or n <= self.polls_until_done:
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


@contextlib.asynccontextmanager
async def serve(fake: FakeImagen, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``fake`` on ``host:port`` (0: a free port) in the running event loop; yield its base URL.

    Sets ``fake.base_url``; the API is ``<base URL>/v1``. The server stops on exit.
    """
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    fake.base_url = f"http://{host}:{runner.addresses[0][1]}"
    try:
        yield fake.base_url
    finally:
        await runner.cleanup()
