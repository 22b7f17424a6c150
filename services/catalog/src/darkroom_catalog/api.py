"""The catalog HTTP API: Faust web views on each catalog worker's web server.

Every table-keyed endpoint uses Faust's ``table_route``: any catalog worker
answers, forwarding the request to the worker that holds the key's partition
(``jobs`` by image_id — ``job_id == image_id`` for every upload made with
:mod:`darkroom_common.uploads` —, ``galleries`` by gallery_id). The event
stream is forwarded by :meth:`CatalogApi.job_events` itself, because Faust's
forwarding reads a whole response before answering.

Endpoints (JSON; every error is ``{"reason": <code>, "message": <sentence>}``):

======================================  =======  ===================================
``GET /healthz``, ``GET /readyz``       none     liveness; readiness (tables recovered,
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
from typing import Any, Literal, cast
from urllib.parse import quote

import faust
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from faust.web import View
from faust.web.exceptions import ServiceUnavailable
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from yarl import URL

from darkroom_catalog.agents import JOBS_TABLE, Catalog
from darkroom_catalog.jobs import JobState
from darkroom_catalog.page import render_gallery
from darkroom_catalog.views import (
    MAX_LIMIT,
    BadQuery,
    gallery_page,
    image_of_job,
    job_view,
    parse_limit,
)
from darkroom_common.auth import Forbidden, KeyRing, Principal, Scope, Unauthenticated
from darkroom_common.errors import DarkroomError, InvalidKey, ObjectNotFound
from darkroom_common.gallery_settings import (
    GallerySettingsCache,
    cache_for,
    publish_gallery_settings,
)
from darkroom_common.storage import ObjectStore, open_store, validate_key
from darkroom_common.storage.s3 import S3Store
from darkroom_imaging.profiles import list_profiles
from darkroom_schemas import GallerySettingsV1, ImageDeletedV1, UploadedV1, WireRecord, encode
from darkroom_schemas.base import Identifier

log = logging.getLogger(__name__)

COOKIE = "darkroom_key"
"""The cookie the gallery page sets from its ``?key=`` parameter."""
PAGE_HEADER = "X-Darkroom-Page"
"""Header the page's retry action requires (a cross-site form cannot send it)."""
OBJECT_PREFIXES = ("variants/",)
"""Only variants are served by ``/v1/objects/``: originals and masters stay private."""

Handler = Callable[..., Awaitable[Any]]


class ApiError(Exception):
    """An expected failure answered as ``{"reason", "message"}`` with ``status``."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


class SettingsBody(BaseModel):
    """The body of ``PUT /v1/galleries/{id}/settings``; omitted fields take their defaults."""

    model_config = ConfigDict(extra="forbid")

    processing_provider: str = Field("local", pattern=r"^(local|imagen)$")
    processing_mode: str = Field("auto", pattern=r"^(auto|manual)$")
    profile: str | None = None
    max_concurrent_jobs: int | None = Field(None, ge=1, le=10_000)


def _error(status: int, reason: str, message: str, **headers: str) -> web.Response:
    return web.json_response(
        {"reason": reason, "message": message}, status=status, headers=headers or None
    )


def guarded(fun: Handler) -> Handler:
    """Turn expected failures of a view method into JSON error responses; never a traceback."""

    @functools.wraps(fun)
    async def wrapper(view: View, request: web.Request, **kwargs: Any) -> Any:
        try:
            return await fun(view, request, **kwargs)
        except ApiError as exc:
            return _error(exc.status, exc.reason, exc.message)
        except BadQuery as exc:
            return _error(400, exc.reason, exc.message)
        except Unauthenticated as exc:
            return _error(401, exc.reason_code, exc.message, **{"WWW-Authenticate": "Bearer"})
        except Forbidden as exc:
            return _error(403, exc.reason_code, exc.message)
        except ServiceUnavailable:
            return _error(503, "not_ready", "the catalog has no partition assignment yet")
        except KafkaError as exc:
            log.warning("broker unavailable", extra={"error": str(exc)})
            return _error(503, "broker_unavailable", "the command could not be sent to Kafka")
        except ObjectNotFound as exc:
            return _error(404, "object_not_found", exc.message)
        except DarkroomError as exc:
            status = 503 if exc.retriable else 500
            return _error(status, exc.reason_code, exc.message)

    return wrapper


class Commands:
    """One aiokafka producer (idempotent, ``acks=all``) for the API's commands, started lazily.

    Args:
        bootstrap: the Kafka cluster.
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def producer(self) -> AIOKafkaProducer:
        """Return the started producer.

        Raises:
            aiokafka.errors.KafkaError: the cluster cannot be reached.
        """
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True
                )
                await producer.start()
                self._producer = producer
            return self._producer

    async def send(self, topic: str, event: WireRecord) -> None:
        """Produce ``event`` to ``topic`` keyed by its image_id and wait for the acks."""
        producer = await self.producer()
        key = str(getattr(event, "image_id", "")).encode()
        await producer.send_and_wait(topic, encode(event), key=key)

    async def close(self) -> None:
        """Flush and stop the producer, if it was started."""
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None


class CatalogApi:
    """The catalog's web views, bound to one :class:`Catalog`.

    Args:
        catalog: the stage (app, tables, settings).
        keyring: accepted API keys (default: from ``settings.auth``).
        store: the object store (default: ``open_store(settings.storage)``).

    Raises:
        ConfigurationError: the API keys file is unreadable or invalid.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        keyring: KeyRing | None = None,
        store: ObjectStore | None = None,
    ) -> None:
        self.catalog = catalog
        self.app: faust.App = catalog.app
        self.settings = catalog.settings
        self.keyring = keyring or KeyRing.from_settings(self.settings.auth)
        self.store = store or open_store(self.settings.storage)
        self.gallery_settings: GallerySettingsCache = cache_for(self.app, self.settings)
        self.commands = Commands(self.settings.kafka_bootstrap_servers)
        self.profiles = set(list_profiles())

        async def _close(sender: Any, **_: Any) -> None:
            await self.commands.close()
            await self.store.close()

        self.app.on_before_shutdown.connect(cast(Any, _close))
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

    def owner(self, table: str, key: str) -> URL | None:
        """Return the web URL of the worker holding ``key`` of ``table``, ``None`` if this one.

        Raises:
            ServiceUnavailable: no partition assignment yet.
        """
        try:
            dest = self.app.router.key_store(table, key)
        except KeyError:
            raise ServiceUnavailable() from None
        here = URL(str(self.app.conf.canonical_url))
        if (dest.host, dest.port or 80) == (here.host, here.port or 80):
            return None
        return dest

    def self_url(self) -> str:
        """Return this worker's own API base URL, for the page's calls to the JSON API."""
        host = self.settings.web_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self.settings.web_port}"

    async def ready(self) -> list[str]:
        """Return why this worker is not ready (empty when it is)."""
        problems = []
        if self.app.rebalancing:
            problems.append("rebalancing")
        recovery: Any = getattr(self.app.tables, "recovery", None)  # TableManager, untyped
        if recovery is None or not recovery.completed.is_set():
            problems.append("tables recovering")
        try:
            await self.gallery_settings.ready(timeout_s=0.05)
        except TimeoutError:
            problems.append("gallery settings not read yet")
        return problems

    # ---- endpoints -----------------------------------------------------------

    def _register(self) -> None:
        api = self
        app = self.app
        jobs = self.catalog.jobs
        galleries = self.catalog.galleries

        def routed(table: Any, param: str) -> Callable[[Handler], Handler]:
            return cast("Callable[[Handler], Handler]", app.table_route(table, match_info=param))

        def requires(scope: Scope, *, browser: bool = False) -> Callable[[Handler], Handler]:
            def decorate(fun: Handler) -> Handler:
                @functools.wraps(fun)
                async def wrapper(view: View, request: web.Request, **kwargs: Any) -> Any:
                    request["principal"] = api.authorize(request, scope, browser=browser)
                    return await fun(view, request, **kwargs)

                return wrapper

            return decorate

        @app.page("/healthz")
        class Health(View):
            async def get(self, request: web.Request) -> web.Response:
                return web.json_response({"status": "ok"})

        @app.page("/readyz")
        class Ready(View):
            async def get(self, request: web.Request) -> web.Response:
                if problems := await api.ready():
                    return _error(503, "not_ready", "; ".join(problems))
                return web.json_response({"status": "ready"})

        @app.page("/metrics")
        class Metrics(View):
            async def get(self, request: web.Request) -> web.Response:
                return web.Response(
                    body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST}
                )

        @app.page("/v1/jobs/{job_id}")
        class Job(View):
            @guarded
            @requires("read")
            @routed(jobs, "job_id")
            async def get(self, request: web.Request, job_id: str) -> web.Response:
                return web.json_response(await job_view(api._job(job_id), api.url_for))

        @app.page("/v1/jobs/{job_id}/events")
        class JobEvents(View):
            @guarded
            @requires("read")
            async def get(self, request: web.Request, job_id: str) -> web.StreamResponse:
                return await api.job_events(request, job_id)

        @app.page("/v1/jobs/{job_id}/retry")
        class Retry(View):
            @guarded
            @requires("admin")
            @routed(jobs, "job_id")
            async def post(self, request: web.Request, job_id: str) -> web.Response:
                return await api.retry(job_id)

        @app.page("/v1/jobs/{job_id}/start")
        class Start(View):
            @guarded
            @requires("admin")
            @routed(jobs, "job_id")
            async def post(self, request: web.Request, job_id: str) -> web.Response:
                return await api.start(job_id)

        @app.page("/v1/images/{image_id}")
        class Image(View):
            @guarded
            @requires("read")
            @routed(jobs, "image_id")
            async def get(self, request: web.Request, image_id: str) -> web.Response:
                job = api._job(image_id, kind="image")
                return web.json_response(await image_of_job(job, api.url_for))

            @guarded
            @requires("admin")
            @routed(jobs, "image_id")
            async def delete(self, request: web.Request, image_id: str) -> web.Response:
                return await api.delete(image_id, request["principal"])

        @app.page("/v1/galleries/{gallery_id}/images")
        class GalleryImages(View):
            @guarded
            @requires("read")
            @routed(galleries, "gallery_id")
            async def get(self, request: web.Request, gallery_id: str) -> web.Response:
                limit = parse_limit(request.query.get("limit"))
                page = await gallery_page(
                    gallery_id,
                    api.catalog.get_gallery(gallery_id),
                    api.url_for,
                    limit=limit,
                    cursor=request.query.get("cursor"),
                )
                api.overlay_status(page)
                return web.json_response(page)

        @app.page("/v1/galleries/{gallery_id}/settings")
        class Settings(View):
            @guarded
            @requires("read")
            async def get(self, request: web.Request, gallery_id: str) -> web.Response:
                return web.json_response(api.settings_view(_gallery_id(gallery_id)))

            @guarded
            @requires("admin")
            async def put(self, request: web.Request, gallery_id: str) -> web.Response:
                return await api.put_settings(_gallery_id(gallery_id), request)

        @app.page("/v1/objects/{key:.+}")
        class Objects(View):
            @guarded
            @requires("read", browser=True)
            async def get(self, request: web.Request, key: str) -> web.StreamResponse:
                return await api.object(request, key)

        @app.page("/galleries/{gallery_id}")
        class Page(View):
            @guarded
            async def get(self, request: web.Request, gallery_id: str) -> web.Response:
                return await api.page(request, gallery_id)

        @app.page("/galleries/{gallery_id}/jobs/{job_id}/retry")
        class PageRetry(View):
            @guarded
            @requires("admin", browser=True)
            async def post(self, request: web.Request, gallery_id: str, job_id: str) -> Any:
                if request.headers.get(PAGE_HEADER) != "1":
                    raise ApiError(403, "forbidden", f"the page's retry needs {PAGE_HEADER}: 1")
                key = request.cookies.get(COOKIE) or ""
                auth = request.headers.get("Authorization") or f"Bearer {key}"
                job = quote(_identifier(job_id, "job"), safe="")
                status, body = await api.call("POST", f"/v1/jobs/{job}/retry", auth)
                return web.json_response(body, status=status)

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
        await self.commands.send(self.settings.topic("uploaded"), event)
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
        await self.commands.send(self.settings.topic("uploaded"), event)
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
            await self.commands.send(self.settings.topic("image-deleted"), event)
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
        s = self.gallery_settings.get(gallery_id)
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
                f"profile {event.profile!r} is not one of {', '.join(sorted(self.profiles))}",
            )
        producer = await self.commands.producer()
        await publish_gallery_settings(producer, self.settings.topic("gallery-settings"), event)
        # Read-your-writes on this worker; the others see it through the topic.
        self.gallery_settings.apply(gallery_id.encode(), encode(event))
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

    async def call(self, method: str, path: str, authorization: str) -> tuple[int, Any]:
        """Call this worker's own JSON API (which routes to the key's worker); ``(status, json)``."""
        async with self.app.http_client.request(
            method, self.self_url() + path, headers={"Authorization": authorization}
        ) as response:
            return response.status, await response.json(content_type=None)

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
            return web.json_response(body, status=status)
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

        Each event is ``event: job`` with ``id: <n>`` and the :func:`job_view`
        JSON as data; the first is the current state, then one per change of
        the public view, in the order the jobs agent applied them. The stream
        ends after a ``complete`` or ``failed`` state, or ``event: deleted``.
        A job not in the catalog yet is waited for ``sse_wait_s`` seconds
        (404 ``job_not_found`` then). When another worker holds the job, the
        stream is forwarded from it chunk by chunk.
        """
        if (dest := self.owner(JOBS_TABLE, job_id)) is not None:
            return await self._forward_stream(request, dest)
        with self.catalog.watch(job_id) as updates:
            job = self.catalog.get_job(job_id)
            if job is None:
                try:
                    job = await asyncio.wait_for(updates.get(), self.settings.sse_wait_s)
                except TimeoutError:
                    raise ApiError(
                        404, "job_not_found", f"no job {job_id!r} in the catalog"
                    ) from None
            if job.deleted_at is not None:
                raise ApiError(404, "job_deleted", f"job {job_id!r} was deleted")
            response = web.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream",
                    "Cache-Control": "no-cache",
                    "X-Accel-Buffering": "no",
                }
            )
            await response.prepare(request)
            with contextlib.suppress(ConnectionResetError):  # the client went away
                await self._stream_states(response, updates, job)
            return response

    async def _stream_states(
        self, response: web.StreamResponse, updates: asyncio.Queue[JobState], job: JobState
    ) -> None:
        seq = 0
        last: dict[str, Any] | None = None
        while True:
            if job.deleted_at is not None:
                data = json.dumps({"job_id": job.job_id, "image_id": job.image_id})
                await response.write(f"id: {seq}\nevent: deleted\ndata: {data}\n\n".encode())
                break
            view = await job_view(job, self.url_for)
            public = {k: v for k, v in view.items() if k != "updated_at"}
            if public != last:
                last = public
                seq += 1
                chunk = f"id: {seq}\nevent: job\ndata: {json.dumps(view)}\n\n"
                await response.write(chunk.encode())
            if job.terminal:
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
                if self.owner(JOBS_TABLE, job_id) is not None:
                    raise ConnectionResetError("the job's partition moved; reconnect") from None

    async def _forward_stream(self, request: web.Request, dest: URL) -> web.StreamResponse:
        url = request.url.with_host(dest.host or "127.0.0.1").with_port(dest.port)
        headers = {"Authorization": request.headers.get("Authorization", "")}
        async with self.app.http_client.get(url, headers=headers) as upstream:
            response = web.StreamResponse(
                status=upstream.status,
                headers={"Content-Type": upstream.headers.get("Content-Type", "text/plain")},
            )
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response


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
