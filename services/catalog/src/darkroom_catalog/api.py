"""The catalog HTTP API, on each catalog worker's web server (aiohttp).

Every table-keyed endpoint is answered by whichever catalog worker is asked: the
worker that holds the key's partition (``jobs`` by image_id — ``job_id == image_id``
for every upload made with :mod:`darkroom_common.uploads` —, ``galleries`` by
gallery_id) answers from its tables; any other forwards the request to it (the
consumer group's assignor tells every worker who owns each partition), streaming the
answer back with its status and headers. While a partition has no ready owner
(a rebalance, a restore) or its owner cannot be reached, the answer is 503
``not_ready`` / ``owner_unavailable`` with ``Retry-After``.

Endpoints (JSON; every error is the shape of :mod:`darkroom_common.api_errors`,
``{"reason": <code>, "message": <sentence>}``):

======================================  =======  ===================================
``GET /healthz``, ``GET /readyz``       none     liveness; readiness (tables restored,
                                                 no rebalance, gallery settings read)
``GET /metrics``                        none     Prometheus text format
``GET /v1/jobs/{job_id}``               read     the job (status, attempts, variants…)
``GET /v1/jobs/{job_id}/events``        read     Server-Sent Events until terminal
``POST /v1/jobs/{job_id}/retry``        admin    a failed job → ``uploaded`` attempt+1
``POST /v1/jobs/{job_id}/start``        admin    a queued job → ``uploaded`` source=start
``GET /v1/images/{image_id}``           read     the image (variants with URLs, EXIF…)
``DELETE /v1/images/{image_id}``        admin    produce ``image-deleted`` (202)
``GET /v1/galleries/{id}/images``       read     ``?limit=1..200&cursor=`` page + total
``GET|PUT /v1/galleries/{id}/settings`` read/    processing settings (compacted topic)
                                        admin
``GET /v1/objects/{key}``               read*    a variant's bytes (filesystem store)
``GET /galleries/{id}``                 read*    the HTML gallery page
``POST /galleries/{id}/jobs/{j}/retry`` admin*   the page's Retry button
======================================  =======  ===================================

Auth is ``Authorization: Bearer <key>`` (:class:`~darkroom_common.auth.KeyRing`):
401 ``unauthenticated`` without a valid key, 403 ``forbidden`` without the
scope. The probes and ``/metrics`` are open so orchestrators and Prometheus
need no key. ``*``: a browser cannot send a header with ``<img>`` or a link,
so the page also accepts the key as a ``?key=`` query parameter, which it
turns into an HttpOnly, ``SameSite=Strict`` cookie (``darkroom_key``); that
cookie is honoured only by the page, ``/v1/objects/`` (its images) and the
page's retry action, which also requires an ``X-Darkroom-Page`` header so a
cross-site form cannot trigger it.

Variant URLs: ``storage.public_base_url`` (a CDN) when set; else a presigned
GET URL from the S3 store; else (filesystem store) the catalog's own
``/v1/objects/{key}``, which streams from the store and requires the read scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from darkroom_catalog.jobs import JobState
from darkroom_catalog.page import render_gallery
from darkroom_catalog.routes import Catalog
from darkroom_catalog.settings import CatalogSettings
from darkroom_catalog.views import (
    MAX_LIMIT,
    BadQuery,
    gallery_page,
    image_of_job,
    job_view,
    parse_limit,
)
from darkroom_common.api_errors import RETRY_AFTER_S, ApiError, api_error_of
from darkroom_common.auth import Forbidden, KeyRing, Principal, Scope, Unauthenticated
from darkroom_common.errors import DarkroomError, InvalidKey
from darkroom_common.gallery_settings import GallerySettingsCache
from darkroom_common.ports import Ports
from darkroom_common.storage import validate_key
from darkroom_common.storage.s3 import S3Store
from darkroom_imaging.profiles import ProfileCatalog
from darkroom_runtime import StageApp
from darkroom_schemas import GallerySettingsV1, ImageDeletedV1, UploadedV1, encode
from darkroom_schemas.base import Identifier

log = logging.getLogger(__name__)

COOKIE = "darkroom_key"
"""The cookie the gallery page sets from its ``?key=`` parameter."""
PAGE_HEADER = "X-Darkroom-Page"
"""Header the page's retry action requires (a cross-site form cannot send it)."""
OBJECT_PREFIXES = ("variants/",)
"""Only variants are served by ``/v1/objects/``: originals and masters stay private."""

FORWARDED = "X-Darkroom-Forwarded"
"""Set on a request one catalog worker forwards to another; it is never forwarded again."""
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer"}
)
"""Headers a forwarding hop must not copy (RFC 9110 §7.6.1, plus the length it recomputes)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

OWNER_UNAVAILABLE = "the catalog worker holding this key cannot be reached; try again shortly"
CONNECT_TIMEOUT_S = 2.0
"""How long a forward waits to connect to the key's owner before answering 503 (s)."""
READ_TIMEOUT_S = 30.0
"""How long a forwarded (non-stream) request waits between bytes from the owner (s)."""
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
"""Headers of every Server-Sent Events answer (kept when forwarded)."""


class SettingsBody(BaseModel):
    """The body of ``PUT /v1/galleries/{id}/settings``; omitted fields take their defaults."""

    model_config = ConfigDict(extra="forbid")

    processing_provider: str = Field("local", pattern=r"^(local|imagen)$")
    processing_mode: str = Field("auto", pattern=r"^(auto|manual)$")
    profile: str | None = None
    max_concurrent_jobs: int | None = Field(None, ge=1, le=10_000)


def _error(error: ApiError) -> web.Response:
    return web.json_response(error.body(), status=error.status, headers=error.headers or None)


def guarded(fun: Handler) -> Handler:
    """Turn expected failures of a handler into the JSON error shape; never a traceback."""

    @functools.wraps(fun)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await fun(request)
        except ApiError as exc:
            return _error(exc)
        except BadQuery as exc:
            return _error(ApiError(400, exc.reason, exc.message))
        except DarkroomError as exc:
            if exc.retriable:
                log.warning("temporarily unavailable", extra={"error": str(exc)})
            return _error(api_error_of(exc))
        except (aiohttp.ClientError, TimeoutError) as exc:
            # A call to another worker (the page's own API call) failed: the owner is away.
            log.warning("a catalog worker cannot be reached", extra={"error": repr(exc)})
            return _error(ApiError(503, "owner_unavailable", OWNER_UNAVAILABLE))
        except Exception:
            # Never aiohttp's text/plain 500: the shared JSON shape, and the traceback in the log.
            log.exception("a request failed unexpectedly")
            return _error(
                ApiError(500, "internal_error", "the catalog failed to answer; see its log")
            )

    return wrapper


class CatalogApi:
    """The catalog's HTTP endpoints, added to one catalog worker's web server.

    Args:
        app: the catalog's worker (its partition map routes keyed requests).
        catalog: the stage's tables and read helpers.
        ports: the producer (commands), gallery settings, object store and clock.
        settings: the service's settings (web address, SSE bounds, storage URLs).
        keyring: accepted API keys (default: from ``settings.auth``).
        profiles: the profiles a gallery's ``profile`` setting may name.

    Raises:
        ConfigurationError: the API keys file is unreadable or invalid.
    """

    def __init__(
        self,
        app: StageApp,
        catalog: Catalog,
        ports: Ports,
        settings: CatalogSettings,
        *,
        keyring: KeyRing | None = None,
        profiles: ProfileCatalog | None = None,
    ) -> None:
        self.app = app
        self.catalog = catalog
        self.ports = ports
        self.settings = settings
        self.store = ports.store
        self.producer = ports.producer
        self.keyring = keyring or KeyRing.from_settings(settings.auth)
        self.profiles = profiles or ProfileCatalog(settings.profiles_dir)
        self._register()

    # ---- helpers -------------------------------------------------------------

    def authorize(self, request: web.Request, scope: Scope, *, browser: bool = False) -> Principal:
        """Return the caller, from the Bearer header (or, for ``browser`` routes, the cookie).

        Raises:
            Unauthenticated: 401. Forbidden: 403.
        """
        header = request.headers.get("Authorization")
        if header is None and browser and (key := request.cookies.get(COOKIE)):
            header = f"Bearer {key}"
        return self.keyring.authorize(header, scope)

    async def url_for(self, key: str) -> str:
        """Return a URL a client can GET ``key`` from (CDN, presigned S3, or this API)."""
        if (public := self.settings.storage.public_url(key)) is not None:
            return public
        if isinstance(self.store, S3Store):
            return await self.store.presign_get(key)
        return f"/v1/objects/{quote(key, safe='/')}"

    def _job(self, job_id: str, *, kind: str = "job") -> JobState:
        job = self.catalog.get_job(job_id)
        if job is None or (kind == "job" and job.job_id != job_id):
            raise ApiError(404, f"{kind}_not_found", f"no {kind} {job_id!r} in the catalog")
        if job.deleted_at is not None:
            raise ApiError(404, f"{kind}_deleted", f"{kind} {job_id!r} was deleted")
        return job

    def owner(self, key: str) -> str | None:
        """Return the base URL of the worker holding ``key``'s partition, ``None`` for this one.

        Raises:
            ApiError: 503 ``not_ready`` while the partition has no ready owner (a
                rebalance, or its tables are being restored).
        """
        located = self.app.locate(self.app.partition_of(key))
        if located.where == "here":
            return None
        if located.where == "elsewhere" and located.url is not None:
            return located.url
        raise ApiError(
            503, "not_ready", "the catalog is taking over this key's partition; try again shortly"
        )

    def self_url(self) -> str:
        """Return this worker's own API base URL, for the page's calls to the JSON API."""
        host = self.settings.web_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self.settings.web_port}"

    async def forward(self, request: web.Request, base: str) -> web.StreamResponse:
        """Send ``request`` to the worker at ``base``; stream its answer back, headers kept.

        Every header of the owner's answer is kept but the hop-by-hop ones
        (:data:`HOP_BY_HOP`), so an event stream keeps ``Content-Type:
        text/event-stream``, ``Cache-Control: no-cache`` and ``X-Accel-Buffering: no``,
        and an owner's own 503 keeps its ``Retry-After``. A stream the owner breaks
        mid-body (killed, reset) simply ends: its status was already sent, and an
        SSE client resumes with ``Last-Event-ID``.

        Raises:
            ApiError: 503 ``owner_unavailable`` when that worker cannot be reached
                (refused, reset, DNS, a connect or read timeout) or answers a
                non-JSON 5xx; ``not_ready`` when the request was already forwarded
                once (the partition map is changing: never a forwarding loop).
        """
        if request.headers.get(FORWARDED):
            raise ApiError(
                503, "not_ready", "the catalog is taking over this key's partition; try again"
            )
        assert self.app.http is not None
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}
        }
        headers[FORWARDED] = "1"
        body = await request.read() if request.can_read_body else None
        stream = request.path.endswith("/events")
        # A stream sends a keep-alive every sse_keepalive_s; a silent owner is a dead one.
        read_s = 2 * self.settings.sse_keepalive_s + 5 if stream else READ_TIMEOUT_S
        try:
            upstream = await self.app.http.request(
                request.method,
                base.rstrip("/") + request.rel_url.raw_path_qs,
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=CONNECT_TIMEOUT_S,
                    sock_connect=CONNECT_TIMEOUT_S,
                    sock_read=read_s,
                ),
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("the owner of a partition cannot be reached", extra={"error": repr(exc)})
            raise ApiError(503, "owner_unavailable", OWNER_UNAVAILABLE) from None
        async with upstream:
            content_type = upstream.headers.get("Content-Type", "")
            if upstream.status >= 500 and "json" not in content_type:
                log.warning("the owner of a partition failed", extra={"status": upstream.status})
                raise ApiError(503, "owner_unavailable", OWNER_UNAVAILABLE)
            response = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP},
            )
            if not stream and upstream.status != 204:
                # A JSON answer is read whole first, so a reset mid-body is still a 503.
                try:
                    data = await upstream.read()
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    log.warning("the owner broke off its answer", extra={"error": repr(exc)})
                    raise ApiError(503, "owner_unavailable", OWNER_UNAVAILABLE) from None
                response.content_length = len(data)
                await response.prepare(request)
                await response.write(data)
                await response.write_eof()
                return response
            await response.prepare(request)
            with contextlib.suppress(
                ConnectionResetError, aiohttp.ClientError, OSError, TimeoutError
            ):
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            with contextlib.suppress(ConnectionResetError, OSError):
                await response.write_eof()
            return response

    # ---- endpoints -----------------------------------------------------------

    def _register(self) -> None:
        api = self
        router = self.app.web.router

        def requires(scope: Scope, *, browser: bool = False) -> Callable[[Handler], Handler]:
            def decorate(fun: Handler) -> Handler:
                @functools.wraps(fun)
                async def wrapper(request: web.Request) -> web.StreamResponse:
                    request["principal"] = api.authorize(request, scope, browser=browser)
                    return await fun(request)

                return wrapper

            return decorate

        def routed(param: str) -> Callable[[Handler], Handler]:
            """Answer here when this worker holds the key's partition, else forward."""

            def decorate(fun: Handler) -> Handler:
                @functools.wraps(fun)
                async def wrapper(request: web.Request) -> web.StreamResponse:
                    key = request.match_info[param]
                    if (base := api.owner(key)) is not None:
                        return await api.forward(request, base)
                    return await fun(request)

                return wrapper

            return decorate

        @guarded
        @requires("read")
        @routed("job_id")
        async def get_job(request: web.Request) -> web.StreamResponse:
            job = api._job(request.match_info["job_id"])
            return web.json_response(await job_view(job, api.url_for))

        @guarded
        @requires("read")
        @routed("job_id")
        async def job_events(request: web.Request) -> web.StreamResponse:
            return await api.job_events(request, request.match_info["job_id"])

        @guarded
        @requires("admin")
        @routed("job_id")
        async def retry(request: web.Request) -> web.StreamResponse:
            return await api.retry(request.match_info["job_id"])

        @guarded
        @requires("admin")
        @routed("job_id")
        async def start(request: web.Request) -> web.StreamResponse:
            return await api.start(request.match_info["job_id"])

        @guarded
        @requires("read")
        @routed("image_id")
        async def get_image(request: web.Request) -> web.StreamResponse:
            job = api._job(request.match_info["image_id"], kind="image")
            return web.json_response(await image_of_job(job, api.url_for))

        @guarded
        @requires("admin")
        @routed("image_id")
        async def delete_image(request: web.Request) -> web.StreamResponse:
            return await api.delete(request.match_info["image_id"], request["principal"])

        @guarded
        @requires("read")
        @routed("gallery_id")
        async def gallery_images(request: web.Request) -> web.StreamResponse:
            gallery_id = request.match_info["gallery_id"]
            page = await gallery_page(
                gallery_id,
                api.catalog.get_gallery(gallery_id),
                api.url_for,
                limit=parse_limit(request.query.get("limit")),
                cursor=request.query.get("cursor"),
            )
            api.overlay_status(page)
            return web.json_response(page)

        @guarded
        @requires("read")
        async def get_settings(request: web.Request) -> web.StreamResponse:
            gallery_id = _gallery_id(request.match_info["gallery_id"])
            return web.json_response(api.settings_view(gallery_id))

        @guarded
        @requires("admin")
        async def put_settings(request: web.Request) -> web.StreamResponse:
            return await api.put_settings(_gallery_id(request.match_info["gallery_id"]), request)

        @guarded
        @requires("read", browser=True)
        async def get_object(request: web.Request) -> web.StreamResponse:
            return await api.object(request, request.match_info["key"])

        @guarded
        async def page(request: web.Request) -> web.StreamResponse:
            return await api.page(request, request.match_info["gallery_id"])

        @guarded
        @requires("admin", browser=True)
        async def page_retry(request: web.Request) -> web.StreamResponse:
            if request.headers.get(PAGE_HEADER) != "1":
                raise ApiError(403, "forbidden", f"the page's retry needs {PAGE_HEADER}: 1")
            key = request.cookies.get(COOKIE) or ""
            auth = request.headers.get("Authorization") or f"Bearer {key}"
            job = quote(_identifier(request.match_info["job_id"], "job"), safe="")
            status, body = await api.call("POST", f"/v1/jobs/{job}/retry", auth)
            retry_after = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
            return web.json_response(body, status=status, headers=retry_after)

        router.add_get("/v1/jobs/{job_id}", get_job)
        router.add_get("/v1/jobs/{job_id}/events", job_events)
        router.add_post("/v1/jobs/{job_id}/retry", retry)
        router.add_post("/v1/jobs/{job_id}/start", start)
        router.add_get("/v1/images/{image_id}", get_image)
        router.add_delete("/v1/images/{image_id}", delete_image)
        router.add_get("/v1/galleries/{gallery_id}/images", gallery_images)
        router.add_get("/v1/galleries/{gallery_id}/settings", get_settings)
        router.add_put("/v1/galleries/{gallery_id}/settings", put_settings)
        router.add_get("/v1/objects/{key:.+}", get_object)
        router.add_get("/galleries/{gallery_id}", page)
        router.add_post("/galleries/{gallery_id}/jobs/{job_id}/retry", page_retry)

    # ---- actions -------------------------------------------------------------

    async def retry(self, job_id: str) -> web.Response:
        """Re-queue a failed job: ``uploaded`` with ``attempt + 1`` and ``source="retry"``."""
        job = self._job(job_id)
        if job.status != "failed":
            raise ApiError(
                409,
                "not_failed",
                f"job {job_id!r} is {job.status}; only a failed job can be retried",
            )
        event = await self._reupload(job, attempt=job.attempts + 1, source="retry")
        await self.producer.send("uploaded", event)
        log.info("job retried", extra={"job_id": job_id, "attempt": event.attempt})
        return web.json_response(
            {"job_id": job_id, "attempt": event.attempt, "status": "queued"}, status=202
        )

    async def start(self, job_id: str) -> web.Response:
        """Release a queued job held in manual mode: ``uploaded`` with ``source="start"``."""
        job = self._job(job_id)
        if job.status != "queued":
            raise ApiError(
                409,
                "not_queued",
                f"job {job_id!r} is {job.status}; only a queued job can be started",
            )
        event = await self._reupload(job, attempt=job.attempts, source="start")
        await self.producer.send("uploaded", event)
        return web.json_response(
            {"job_id": job_id, "attempt": event.attempt, "status": "queued"}, status=202
        )

    async def _reupload(
        self, job: JobState, *, attempt: int, source: Literal["retry", "start"]
    ) -> UploadedV1:
        if job.original_key is None or job.filename is None:
            raise ApiError(
                409, "no_original", f"job {job.job_id!r} has no known original to process again"
            )
        size = job.size_bytes
        if size is None:
            size = (await self.store.head(job.original_key)).size
        return UploadedV1(
            job_id=job.job_id,
            gallery_id=job.gallery_id,
            image_id=job.image_id,
            correlation_id=job.correlation_id,
            attempt=attempt,
            object_key=job.original_key,
            filename=job.filename,
            size_bytes=size,
            content_type=job.content_type,
            profile=job.profile,
            source=source,
        )

    async def delete(self, image_id: str, principal: Principal) -> web.Response:
        """Produce ``image-deleted`` for a known image; 202 again for a deleted one (idempotent)."""
        job = self.catalog.get_job(image_id)
        if job is None:
            raise ApiError(404, "image_not_found", f"no image {image_id!r} in the catalog")
        if job.deleted_at is None:
            event = ImageDeletedV1(
                job_id=job.job_id,
                gallery_id=job.gallery_id,
                image_id=job.image_id,
                correlation_id=job.correlation_id,
                requested_by=principal.name,
            )
            await self.producer.send("image-deleted", event)
        return web.json_response(
            {"image_id": image_id, "gallery_id": job.gallery_id, "status": "deleting"}, status=202
        )

    def overlay_status(self, page: dict[str, Any]) -> None:
        """Replace each listed item's status by its job's live one when the job is held here.

        The gallery table changes only on terminal jobs; a retried or started
        job's live status is in the ``jobs`` table (local when this worker
        holds its partition, as with one worker; otherwise the gallery's last
        terminal status stays).
        """
        for item in page["images"]:
            job = self.catalog.get_job(item["image_id"])
            if job is not None and job.job_id == item["job_id"] and not job.terminal:
                item["status"] = job.status
                item["error"] = None

    def settings_view(self, gallery_id: str) -> dict[str, Any]:
        """Return a gallery's processing settings (defaults when never set)."""
        s = self._gallery_settings().current(gallery_id)
        return {
            "gallery_id": gallery_id,
            "processing_provider": s.processing_provider,
            "processing_mode": s.processing_mode,
            "profile": s.profile,
            "max_concurrent_jobs": s.max_concurrent_jobs,
        }

    async def put_settings(self, gallery_id: str, request: web.Request) -> web.Response:
        """Validate and publish a gallery's settings to the compacted topic; 200 with them."""
        try:
            raw = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "invalid_json", "the body must be a JSON object") from None
        if not isinstance(raw, dict):
            raise ApiError(400, "invalid_json", "the body must be a JSON object")
        try:
            body = SettingsBody.model_validate(raw)
            event = GallerySettingsV1(gallery_id=gallery_id, **body.model_dump())
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
            )
            raise ApiError(422, "invalid_settings", detail) from None
        if event.profile is not None and event.profile not in self.profiles:
            raise ApiError(
                422,
                "unknown_profile",
                f"profile {event.profile!r} is not one of {', '.join(self.profiles.names())}",
            )
        await self.producer.send("gallery-settings", event)
        # Read-your-writes on this worker; the others see it through the topic.
        self._gallery_settings().apply(gallery_id.encode(), encode(event))
        return web.json_response(self.settings_view(gallery_id))

    async def object(self, request: web.Request, key: str) -> web.StreamResponse:
        """Stream a variant's bytes from the store (only valid keys under :data:`OBJECT_PREFIXES`)."""
        try:
            validate_key(key)
        except InvalidKey:
            raise ApiError(404, "object_not_found", "not a valid object key") from None
        if not key.startswith(OBJECT_PREFIXES):
            raise ApiError(404, "object_not_found", "only variants are served")
        info = await self.store.head(key)
        response = web.StreamResponse(
            headers={
                "Content-Type": info.content_type or "application/octet-stream",
                "Content-Length": str(info.size),
                "Cache-Control": "private, max-age=3600",
            }
        )
        await response.prepare(request)
        async with contextlib.aclosing(self.store.get(key)) as chunks:
            async for chunk in chunks:
                await response.write(chunk)
        await response.write_eof()
        return response

    def _gallery_settings(self) -> GallerySettingsCache:
        port = self.ports.gallery_settings
        assert isinstance(port, GallerySettingsCache), "the catalog reads the settings it shows"
        return port

    async def call(self, method: str, path: str, authorization: str) -> tuple[int, Any]:
        """Call this worker's own JSON API (which routes to the key's worker); ``(status, json)``."""
        assert self.app.http is not None
        async with self.app.http.request(
            method, self.self_url() + path, headers={"Authorization": authorization}
        ) as response:
            try:
                return response.status, await response.json(content_type=None)
            except ValueError:  # not JSON: only a failing worker answers so
                raise ApiError(503, "owner_unavailable", OWNER_UNAVAILABLE) from None

    async def page(self, request: web.Request, gallery_id: str) -> web.Response:
        """Render the gallery page; a ``?key=`` parameter becomes the page's cookie.

        The key comes from ``?key=``, else the cookie, else the ``Authorization`` header.
        A valid ``?key=`` is answered with a ``303 See Other`` to the same page without
        it, setting the cookie, so the key does not stay in the address bar, the
        browser's history or a ``Referer``.
        """
        key = request.query.get("key") or request.cookies.get(COOKIE)
        authorization = f"Bearer {key}" if key else request.headers.get("Authorization")
        try:
            principal = self.keyring.authorize(authorization, "read")
        except (Unauthenticated, Forbidden) as exc:
            status = 401 if isinstance(exc, Unauthenticated) else 403
            return web.Response(
                text=f"<!doctype html><title>{status}</title><p>{exc.reason_code}: "
                "open this page with ?key=&lt;API key&gt;</p>",
                status=status,
                content_type="text/html",
            )
        _gallery_id(gallery_id)  # 400 before the id goes into a URL
        if request.query.get("key"):
            response = web.Response(
                status=303, headers={"Location": str(request.rel_url.without_query_params("key"))}
            )
            response.set_cookie(
                COOKIE, key or "", httponly=True, samesite="Strict", path="/", max_age=8 * 3600
            )
            response.headers["Cache-Control"] = "no-store"
            response.headers["Referrer-Policy"] = "no-referrer"
            return response
        query = f"?limit={MAX_LIMIT}"
        if cursor := request.query.get("cursor"):
            query += f"&cursor={quote(cursor)}"
        status, body = await self.call(
            "GET", f"/v1/galleries/{quote(gallery_id, safe='')}/images{query}", authorization or ""
        )
        if status != 200:
            retry_after = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
            return web.json_response(body, status=status, headers=retry_after)
        nonce = secrets.token_urlsafe(16)
        html = render_gallery(gallery_id, body, admin=principal.allows("admin"), nonce=nonce)
        response = web.Response(text=html, content_type="text/html")
        response.headers["Content-Security-Policy"] = (
            f"default-src 'none'; img-src * data:; style-src 'unsafe-inline'; "
            f"script-src 'nonce-{nonce}'; connect-src 'self'; base-uri 'none'; form-action 'self'"
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    async def job_events(self, request: web.Request, job_id: str) -> web.StreamResponse:
        """Stream the job's states as Server-Sent Events until it is terminal or deleted.

        Each event is ``event: job`` with the :func:`job_view` JSON as data, or, last,
        ``event: deleted``. Its ``id`` is the job's :attr:`~JobState.version`: the
        number of writes the ``jobs`` table took under this image_id, carried in the
        table's changelog, so every catalog worker gives the same state the same id.
        The first event is the current state, then one per change of the public view,
        in the order the jobs lane applied them; ids only grow.

        **Resume**: a client that reconnects with ``Last-Event-ID: <id>`` (or
        ``?last_event_id=<id>``, for EventSource polyfills that cannot set headers)
        gets only states newer than ``<id>``, on any worker: the current state first
        if it is newer (each event is a full snapshot, so states that came and went
        while it was away are folded into it: nothing is missing, nothing repeats),
        then every later one. A terminal or deleted job whose last state the client
        already has answers ``204 No Content``, which tells EventSource to stop
        reconnecting. The stream ends after a ``complete`` or ``failed`` state, or
        ``event: deleted``, and when this worker loses the job's partition (the
        client reconnects, and lands on the new owner).

        A job not in the catalog yet is waited for ``sse_wait_s`` seconds
        (404 ``job_not_found`` then); a deleted job is 404 ``job_deleted`` unless
        resuming. When another worker holds the job, the stream is forwarded from it
        chunk by chunk with its headers.

        Raises:
            ApiError: 400 ``invalid_last_event_id`` (not a non-negative integer),
                404 as above.
        """
        after = _last_event_id(request)
        with self.catalog.watch(job_id) as updates:
            job = self.catalog.get_job(job_id)
            if job is None:
                try:
                    job = await asyncio.wait_for(updates.get(), self.settings.sse_wait_s)
                except TimeoutError:
                    raise ApiError(
                        404, "job_not_found", f"no job {job_id!r} in the catalog"
                    ) from None
            if job.deleted_at is not None and after is None:
                raise ApiError(404, "job_deleted", f"job {job_id!r} was deleted")
            finished = job.terminal or job.deleted_at is not None
            if finished and after is not None and job.version <= after:
                return web.Response(status=204, headers={"Cache-Control": "no-cache"})
            response = web.StreamResponse(headers=SSE_HEADERS)
            await response.prepare(request)
            with contextlib.suppress(ConnectionResetError):  # the client went away
                await self._stream_states(response, updates, job, after)
            return response

    async def _stream_states(
        self,
        response: web.StreamResponse,
        updates: asyncio.Queue[JobState],
        job: JobState,
        after: int | None,
    ) -> None:
        sent = -1 if after is None else after
        last: dict[str, Any] | None = None
        while True:
            if job.version > sent:
                if job.deleted_at is not None:
                    data = json.dumps({"job_id": job.job_id, "image_id": job.image_id})
                    chunk = f"id: {job.version}\nevent: deleted\ndata: {data}\n\n"
                    await response.write(chunk.encode())
                    break
                view = await job_view(job, self.url_for)
                public = {k: v for k, v in view.items() if k != "updated_at"}
                if public != last or job.terminal:
                    last = public
                    sent = job.version
                    chunk = f"id: {job.version}\nevent: job\ndata: {json.dumps(view)}\n\n"
                    await response.write(chunk.encode())
            if job.terminal or job.deleted_at is not None:
                break
            job = await self._next_state(response, updates, job.image_id)
        await response.write_eof()

    async def _next_state(
        self, response: web.StreamResponse, updates: asyncio.Queue[JobState], job_id: str
    ) -> JobState:
        while True:
            try:
                return await asyncio.wait_for(updates.get(), self.settings.sse_keepalive_s)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                if self.app.locate(self.app.partition_of(job_id)).where != "here":
                    raise ConnectionResetError("the job's partition moved; reconnect") from None


def _last_event_id(request: web.Request) -> int | None:
    """The ``Last-Event-ID`` header (else ``?last_event_id=``) as an int; ``None`` without one.

    Raises:
        ApiError: 400 ``invalid_last_event_id``: not a non-negative integer.
    """
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        value = -1
    if value < 0:
        raise ApiError(
            400, "invalid_last_event_id", "Last-Event-ID is the id of an event this API sent"
        )
    return value


_ID = TypeAdapter(Identifier)


def _identifier(value: str, what: str) -> str:
    """Return ``value`` if it is a valid id, else raise 400 ``invalid_<what>_id``."""
    try:
        _ID.validate_python(value)
    except ValidationError:
        raise ApiError(
            400, f"invalid_{what}_id", f"a {what} id is 1-128 of [A-Za-z0-9_.-]"
        ) from None
    return value


def _gallery_id(value: str) -> str:
    return _identifier(value, "gallery")
