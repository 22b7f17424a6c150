"""The upload API: originals in, ``uploaded`` events out (``python -m darkroom_ingest.api``).

Endpoints (OpenAPI document at ``/openapi.json``, browsable at ``/docs``):

* ``POST /v1/galleries/{gallery_id}/uploads`` — ``multipart/form-data`` with one
  file part (and optionally a ``profile`` field before it, or ``?profile=``).
  The file streams to the object store as it arrives — never whole in memory —
  then ``uploaded`` is sent through the event producer (idempotent, ``acks=all``).
  202 with ``job_id``, ``image_id`` and ``job_url``.
* ``POST /v1/galleries/{gallery_id}/upload-urls`` — a presigned S3 ``PUT`` URL
  for one key, expiring after ``storage.presign_expiry_s``, and an ``upload_id``;
  ``POST /v1/uploads/{upload_id}/complete`` checks the object and produces
  ``uploaded`` (source ``presigned``). The upload id is a signed token
  (:mod:`darkroom_ingest.tokens`), so completing needs no server-side state.
* ``GET /healthz`` (the process is up), ``GET /readyz`` (producer connected,
  object store reachable).

Auth: ``Authorization: Bearer <key>`` (:class:`~darkroom_common.auth.KeyRing`)
on every endpoint, scope ``upload`` for the POSTs, except ``/healthz``,
``/readyz``, ``/openapi.json`` and ``/docs``: probes and API discovery must
work without a secret, and they reveal nothing about galleries.

Every refusal is JSON ``{"reason": <code>, "message": <sentence>}``, the shape of
:mod:`darkroom_common.api_errors` (a 503 carries ``Retry-After``):

====  =========================================================================
400   ``malformed_multipart``, ``missing_file``, ``invalid_upload``, ``client_disconnected``
401   ``unauthenticated`` (with ``WWW-Authenticate: Bearer``)
403   ``forbidden``
404   ``upload_not_found``
409   ``presign_unsupported`` (the filesystem store cannot presign)
413   ``file_too_large`` (enforced while streaming: the object is never kept)
415   ``unsupported_extension``
422   ``invalid_gallery_id``, ``invalid_profile``, ``invalid_request``, ``invalid_content_type``
429   ``gallery_full`` (the catalog API's image count; ingest enforces it exactly)
503   ``broker_unavailable``, ``storage_unavailable``, ``not_ready``
====  =========================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import uvicorn
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from darkroom_common.api_errors import ApiError, ErrorBody, api_error_of
from darkroom_common.auth import KeyRing, Principal, Scope
from darkroom_common.errors import (
    BrokerUnavailable,
    ConfigurationError,
    DarkroomError,
    InvalidKey,
    InvalidUpload,
    ObjectNotFound,
    StorageUnavailable,
)
from darkroom_common.logging import configure_logging
from darkroom_common.metrics import Metrics
from darkroom_common.objects import original_key
from darkroom_common.ports import EventProducer
from darkroom_common.producer import KafkaEventProducer
from darkroom_common.settings import load_settings
from darkroom_common.storage import (
    InvalidObject,
    ObjectStore,
    StorageAccessDenied,
    UnsupportedOperation,
    open_store,
    validate_content_type,
)
from darkroom_common.uploads import new_id, upload_stream, uploaded_event
from darkroom_imaging.profiles import PROFILE_NAME, ProfileCatalog
from darkroom_ingest.multipart import MalformedMultipart, MultipartStream, boundary_of
from darkroom_ingest.settings import IngestSettings
from darkroom_ingest.tokens import InvalidToken, UploadClaims, sign, verify

log = logging.getLogger(__name__)

GALLERY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
MULTIPART_SLACK_BYTES = 64 * 1024
"""Allowance for multipart headers and small fields over the file size limit (bytes)."""
DRAIN_LIMIT_BYTES = 16 * 1024 * 1024
"""How much of a refused body is still read so the client receives the answer (bytes)."""
EXIT_CONFIG = 2
RECONNECT_S = 2.0
"""How long the API waits between attempts to connect its producer (seconds)."""


class FileTooLarge(Exception):
    """Raised inside the upload stream once more than the limit has arrived."""


class UploadAccepted(BaseModel):
    """202: the original is stored and its ``uploaded`` event acknowledged by the broker."""

    job_id: str
    image_id: str
    gallery_id: str
    object_key: str
    size_bytes: int
    job_url: str


class UploadUrlRequest(BaseModel):
    """Ask for a presigned upload of one file."""

    filename: str = Field(min_length=1, max_length=255, description="The file's name.")
    content_type: str | None = Field(
        default=None, max_length=255, description="If set, the PUT must send this Content-Type."
    )
    size: int | None = Field(default=None, ge=0, description="The file's size in bytes, if known.")
    profile: str | None = Field(default=None, pattern=PROFILE_NAME, description="Variant profile.")


class UploadUrl(BaseModel):
    """A presigned PUT for one key; then ``POST complete_url``."""

    upload_id: str
    image_id: str
    job_id: str
    object_key: str
    method: str = "PUT"
    url: str
    headers: dict[str, str]
    expires_at: datetime
    complete_url: str


class Status(BaseModel):
    """Liveness / readiness answer."""

    status: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "malformed request",
        401: "no or unknown API key",
        403: "the key lacks the scope",
        422: "invalid gallery id, profile or body",
        503: "broker or object store unavailable",
    }.items()
}

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "profile": {"type": "string", "pattern": PROFILE_NAME},
                        "file": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}


def check_gallery_id(gallery_id: str) -> None:
    """Raise ApiError 422 ``invalid_gallery_id`` unless ``gallery_id`` is 1–128 of ``[A-Za-z0-9_.-]``."""
    if not GALLERY_ID.fullmatch(gallery_id):
        raise ApiError(
            422,
            "invalid_gallery_id",
            "A gallery id is 1-128 characters of letters, digits, '_', '.' and '-', "
            "starting with a letter or digit.",
        )


def extension_of(filename: str) -> str:
    """Return ``filename``'s extension, lower case without the dot (``""`` when none)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    return ext.lower() if dot and stem else ""


async def limited(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """Pass ``chunks`` through, raising :class:`FileTooLarge` once more than ``limit`` bytes came."""
    seen = 0
    async for chunk in chunks:
        seen += len(chunk)
        if seen > limit:
            raise FileTooLarge(seen)
        yield chunk


class UploadService:
    """The API's ports, built once: object store, event producer, metrics, profiles, catalog client.

    Started and stopped with the app.

    Args:
        settings: the ingest settings.
        store: the object store; opened from ``settings.storage`` when None (and closed).
        producer: sends ``uploaded`` events; when None a
            :class:`~darkroom_common.producer.KafkaEventProducer` limited to ``uploaded``
            is built here, connected in the background (tried every
            :data:`RECONNECT_S` until the broker answers) and stopped at shutdown. A
            producer passed in is the caller's to start and stop.
        metrics: where the bytes stored are counted; default the process registry's.
        catalog_transport: httpx transport for the catalog API (tests); default network.

    Attributes:
        connected: whether the producer can send (uploads are refused with 503 before).
    """

    def __init__(
        self,
        settings: IngestSettings,
        *,
        store: ObjectStore | None = None,
        producer: EventProducer | None = None,
        metrics: Metrics | None = None,
        catalog_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.keys = KeyRing.from_settings(settings.auth)
        self.profiles = ProfileCatalog(settings.profiles_dir)
        self.metrics = metrics if metrics is not None else Metrics.of()
        self._own_store = store is None
        self.store = store
        self._owned: KafkaEventProducer | None = None
        if producer is None:
            producer = self._owned = KafkaEventProducer(
                settings.kafka_bootstrap_servers,
                topic_prefix=settings.topic_prefix,
                allowed=("uploaded",),
                client_id=settings.topic("upload-api"),
            )
        self.producer: EventProducer = producer
        self.connected = self._owned is None
        self.catalog = httpx.AsyncClient(transport=catalog_transport, timeout=3.0)
        secret = settings.upload_token_secret
        if secret is None:
            log.warning(
                "DARKROOM_INGEST_UPLOAD_TOKEN_SECRET is unset: presigned upload ids are "
                "valid only until this process stops"
            )
        self.token_secret = (
            secret.get_secret_value().encode() if secret is not None else secrets.token_bytes(32)
        )
        self._connect: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the store and start connecting the producer."""
        if self.store is None:
            self.store = open_store(self.settings.storage)
        if self._owned is not None:
            self._connect = asyncio.create_task(self._connect_producer(self._owned))

    async def _connect_producer(self, producer: KafkaEventProducer) -> None:
        while True:
            try:
                await producer.start()
            except BrokerUnavailable as exc:
                log.warning("broker not reachable yet; retrying", extra={"error": str(exc)})
                await asyncio.sleep(RECONNECT_S)
                continue
            self.connected = True
            return

    async def stop(self) -> None:
        """Stop the producer (when built here) and close the store and the catalog client."""
        if self._connect is not None:
            self._connect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connect
        self.connected = False
        if self._owned is not None:
            await self._owned.stop()
        if self._own_store and self.store is not None:
            await self.store.close()
        await self.catalog.aclose()

    def ports(self) -> tuple[ObjectStore, EventProducer]:
        """Return the store and the connected producer.

        Raises:
            ApiError: 503 ``broker_unavailable`` while the producer is not connected.
        """
        if not self.connected or self.store is None:
            raise ApiError(
                503, "broker_unavailable", "The event broker is not reachable yet; try again."
            )
        return self.store, self.producer

    def check_profile(self, profile: str | None) -> None:
        """Raise ApiError 422 ``invalid_profile`` unless ``profile`` is None or a profile name.

        Only the form is checked (:data:`~darkroom_imaging.profiles.PROFILE_NAME`): a
        well-formed name the catalog lacks fails the job in the planner
        (``unknown_profile``), where the deployment's profiles are resolved.
        """
        if profile is not None and not self.profiles.is_name(profile):
            raise ApiError(422, "invalid_profile", f"{profile[:64]!r} is not a profile name.")

    def job_url(self, job_id: str) -> str:
        """Return the URL of ``job_id`` on the catalog API (or under the public base URL)."""
        base = (self.settings.catalog_api_url or self.settings.api_base_url()).rstrip("/")
        return f"{base}/v1/jobs/{job_id}"

    async def gallery_total(self, gallery_id: str, authorization: str | None) -> int | None:
        """Return the gallery's image count from the catalog API, or None when unknown.

        Unknown (no catalog URL, catalog down, unexpected answer) is not an
        error: the ingest stage enforces the limit authoritatively anyway.
        """
        base = self.settings.catalog_api_url
        if not base:
            return None
        key = self.settings.catalog_api_key
        headers = {}
        if key is not None:
            headers["Authorization"] = f"Bearer {key.get_secret_value()}"
        elif authorization:
            headers["Authorization"] = authorization
        url = f"{base.rstrip('/')}/v1/galleries/{gallery_id}/images"
        try:
            response = await self.catalog.get(url, params={"limit": 1}, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("catalog API unreachable; skipping the early gallery limit check",
                        extra={"error": str(exc)})  # fmt: skip
            return None
        if response.status_code == 404:
            return 0
        try:
            response.raise_for_status()
            return int(response.json()["total"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("unexpected catalog API answer; skipping the early gallery limit check",
                        extra={"error": str(exc)[:200]})  # fmt: skip
            return None

    async def check_capacity(self, gallery_id: str, authorization: str | None) -> None:
        """Raise 429 ``gallery_full`` when the catalog says the gallery is at its limit."""
        total = await self.gallery_total(gallery_id, authorization)
        limit = self.settings.max_images_per_gallery
        if total is not None and total >= limit:
            raise ApiError(
                429,
                "gallery_full",
                f"The gallery already holds {total} images; its limit is {limit}.",
            )

    def check_extension(self, filename: str) -> None:
        """Raise 415 ``unsupported_extension`` unless the name's extension is accepted."""
        ext = extension_of(filename)
        if ext not in self.settings.allowed_extensions:
            raise ApiError(
                415,
                "unsupported_extension",
                f"Files named '*.{ext or '(none)'}' are not accepted; accepted extensions: "
                f"{', '.join(self.settings.allowed_extensions)}.",
            )

    def check_size(self, size: int) -> None:
        """Raise 413 ``file_too_large`` when ``size`` exceeds ``max_upload_bytes``."""
        if size > self.settings.max_upload_bytes:
            raise ApiError(
                413,
                "file_too_large",
                f"The file is larger than the limit of {self.settings.max_upload_bytes} bytes.",
            )

    def accepted(self, event: Any) -> UploadAccepted:
        """Return the 202 body for a produced ``uploaded`` event."""
        return UploadAccepted(
            job_id=event.job_id,
            image_id=event.image_id,
            gallery_id=event.gallery_id,
            object_key=event.object_key,
            size_bytes=event.size_bytes,
            job_url=self.job_url(event.job_id),
        )


BEARER = HTTPBearer(auto_error=False, description="An API key with the 'upload' scope.")


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """Return a FastAPI dependency authorizing the caller's bearer key for ``scope``.

    Raises (in the dependency): Unauthenticated (401), Forbidden (403).
    """

    async def dependency(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Principal:
        service: UploadService = request.app.state.service
        return service.keys.authorize(request.headers.get("authorization"), scope)

    return dependency


Uploader = Annotated[Principal, Depends(require("upload"))]
"""A route parameter holding the caller, who has the ``upload`` scope."""


def create_api(
    settings: IngestSettings,
    *,
    store: ObjectStore | None = None,
    producer: EventProducer | None = None,
    metrics: Metrics | None = None,
    catalog_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Return the upload API as an ASGI app (see the module docstring).

    The ports are built once (:class:`UploadService`, ``app.state.service``); the
    keyword arguments replace them (see there).

    Raises:
        ConfigurationError: the API keys file is unreadable or invalid.
    """
    service = UploadService(
        settings,
        store=store,
        producer=producer,
        metrics=metrics,
        catalog_transport=catalog_transport,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="Darkroom upload API",
        version="1",
        description=(__doc__ or "").split("\n\n")[0],
        lifespan=lifespan,
    )
    app.state.service = service

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return respond(exc)

    @app.exception_handler(DarkroomError)
    async def darkroom_error(_: Request, exc: DarkroomError) -> JSONResponse:
        # Unauthenticated and Forbidden from the key ring, and anything a port raised
        # that no endpoint answered itself (a retriable one is a 503).
        return respond(api_error_of(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return respond(ApiError(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return respond(ApiError(exc.status_code, reason, str(exc.detail), dict(exc.headers or {})))

    @app.get("/healthz", response_model=Status, tags=["health"])
    async def healthz() -> Status:
        """Liveness: the process answers. No authentication."""
        return Status(status="ok")

    @app.get(
        "/readyz",
        response_model=Status,
        responses={503: {"model": ErrorBody, "description": "not ready"}},
        tags=["health"],
    )
    async def readyz() -> Status:
        """Readiness: the producer is connected and the object store answers. No authentication."""
        if not service.connected:
            raise ApiError(503, "not_ready", "The event producer is not connected yet.")
        try:
            assert service.store is not None
            await service.store.exists("darkroom-readyz")
        except (StorageUnavailable, StorageAccessDenied) as exc:
            raise ApiError(503, "not_ready", f"The object store is not reachable: {exc}") from exc
        return Status(status="ready")

    @app.post(
        "/v1/galleries/{gallery_id}/uploads",
        status_code=202,
        response_model=UploadAccepted,
        responses={
            **ERRORS,
            413: {"model": ErrorBody, "description": "file_too_large"},
            415: {"model": ErrorBody, "description": "unsupported_extension"},
            429: {"model": ErrorBody, "description": "gallery_full"},
        },
        openapi_extra=UPLOAD_BODY,
        tags=["uploads"],
    )
    async def upload(
        gallery_id: str,
        request: Request,
        principal: Uploader,
        profile: Annotated[str | None, Query(max_length=63, description="Variant profile.")] = None,
    ) -> UploadAccepted:
        """Upload one original (multipart field ``file``); it streams to the object store."""
        check_gallery_id(gallery_id)
        service.check_profile(profile)
        length = request.headers.get("content-length")
        if (
            length
            and length.isdigit()
            and int(length) > settings.max_upload_bytes + MULTIPART_SLACK_BYTES
        ):
            service.check_size(int(length))  # fmt: skip
        try:
            boundary = boundary_of(request.headers.get("content-type"))
        except MalformedMultipart as exc:
            raise ApiError(400, "malformed_multipart", str(exc)) from exc
        await service.check_capacity(gallery_id, request.headers.get("authorization"))
        store, producer = service.ports()
        parts = MultipartStream(aiter(request.stream()), boundary)
        try:
            while (part := await parts.next_part()) is not None:
                if part.filename is None:
                    value = await parts.read_small(1024)
                    if part.name == "profile" and profile is None:
                        profile = value.decode("utf-8", "replace").strip() or None
                        service.check_profile(profile)
                    continue
                try:
                    service.check_extension(part.filename)
                except ApiError:
                    await parts.drain(DRAIN_LIMIT_BYTES)
                    raise
                try:
                    content_type = validate_content_type(part.content_type)
                except InvalidObject:
                    content_type = None
                try:
                    event = await upload_stream(
                        store,
                        producer,
                        limited(parts.data(), settings.max_upload_bytes),
                        gallery_id=gallery_id,
                        filename=part.filename or "upload",
                        profile=profile,
                        source="api",
                        content_type=content_type,
                        metrics=service.metrics,
                    )
                except InvalidUpload as exc:
                    await parts.drain(DRAIN_LIMIT_BYTES)
                    raise ApiError(400, exc.reason_code, exc.message) from None
                except FileTooLarge:
                    await parts.drain(DRAIN_LIMIT_BYTES)
                    raise ApiError(
                        413,
                        "file_too_large",
                        f"The file is larger than the limit of {settings.max_upload_bytes} bytes.",
                    ) from None
                log.info("upload stored", extra={"gallery_id": gallery_id,
                         "image_id": event.image_id, "key_name": principal.name})  # fmt: skip
                return service.accepted(event)
        except MalformedMultipart as exc:
            raise ApiError(400, "malformed_multipart", str(exc)) from exc
        except ClientDisconnect as exc:
            raise ApiError(400, "client_disconnected", "The client went away mid-upload.") from exc
        except BrokerUnavailable as exc:
            raise ApiError(
                503, "broker_unavailable", f"The upload could not be queued: {exc.message}"
            ) from exc
        except (StorageUnavailable, StorageAccessDenied) as exc:
            raise ApiError(
                503, "storage_unavailable", f"The original could not be stored: {exc}"
            ) from exc
        raise ApiError(400, "missing_file", "The multipart body has no file part.")

    @app.post(
        "/v1/galleries/{gallery_id}/upload-urls",
        status_code=201,
        response_model=UploadUrl,
        responses={
            **ERRORS,
            409: {"model": ErrorBody, "description": "presign_unsupported"},
            413: {"model": ErrorBody, "description": "file_too_large"},
            415: {"model": ErrorBody, "description": "unsupported_extension"},
            429: {"model": ErrorBody, "description": "gallery_full"},
        },
        tags=["uploads"],
    )
    async def upload_url(
        gallery_id: str, body: UploadUrlRequest, request: Request, principal: Uploader
    ) -> UploadUrl:
        """Return a presigned PUT URL for one original (S3 backend only) and its upload id."""
        check_gallery_id(gallery_id)
        service.check_extension(body.filename)
        if body.size is not None:
            service.check_size(body.size)
        content_type: str | None = None
        if body.content_type is not None:
            try:
                content_type = validate_content_type(body.content_type)
            except InvalidObject as exc:
                raise ApiError(422, "invalid_content_type", exc.message) from exc
        await service.check_capacity(gallery_id, request.headers.get("authorization"))
        assert service.store is not None
        image_id = new_id()
        key = original_key(gallery_id, image_id, body.filename)
        expiry = settings.storage.presign_expiry_s
        try:
            url = await service.store.presign_put(key, expires_s=expiry, content_type=content_type)
        except UnsupportedOperation as exc:
            raise ApiError(
                409,
                "presign_unsupported",
                "This deployment stores originals on a filesystem; upload through "
                "POST /v1/galleries/{gallery_id}/uploads instead.",
            ) from exc
        claims = UploadClaims(
            gallery_id=gallery_id,
            image_id=image_id,
            filename=body.filename,
            content_type=content_type,
            profile=body.profile,
            expires_at=int(time.time()) + settings.upload_token_ttl_s,
        )
        upload_id = sign(claims, service.token_secret)
        return UploadUrl(
            upload_id=upload_id,
            image_id=image_id,
            job_id=image_id,
            object_key=key,
            url=url,
            headers={"Content-Type": content_type} if content_type else {},
            expires_at=datetime.fromtimestamp(time.time() + expiry, UTC),
            complete_url=f"{settings.api_base_url()}/v1/uploads/{upload_id}/complete",
        )

    @app.post(
        "/v1/uploads/{upload_id}/complete",
        status_code=202,
        response_model=UploadAccepted,
        responses={
            **ERRORS,
            404: {"model": ErrorBody, "description": "upload_not_found"},
            413: {"model": ErrorBody, "description": "file_too_large"},
        },
        tags=["uploads"],
    )
    async def complete(upload_id: str, principal: Uploader) -> UploadAccepted:
        """Check that the presigned upload's object exists, then queue it (source ``presigned``)."""
        try:
            claims = verify(upload_id, service.token_secret)
        except InvalidToken as exc:
            raise ApiError(404, "upload_not_found", f"No such upload: {exc}.") from exc
        store, producer = service.ports()
        key = original_key(claims.gallery_id, claims.image_id, claims.filename)
        try:
            info = await store.head(key)
        except ObjectNotFound as exc:
            raise ApiError(
                404, "upload_not_found", "Nothing was uploaded to the presigned URL yet."
            ) from exc
        except InvalidKey as exc:
            raise ApiError(404, "upload_not_found", "No such upload.") from exc
        except (StorageUnavailable, StorageAccessDenied) as exc:
            raise ApiError(503, "storage_unavailable", f"The object store failed: {exc}") from exc
        if info.size > settings.max_upload_bytes:
            await store.delete(key)
            service.check_size(info.size)
        event = uploaded_event(
            gallery_id=claims.gallery_id,
            image_id=claims.image_id,
            object_key=key,
            filename=claims.filename,
            size_bytes=info.size,
            content_type=claims.content_type or info.content_type,
            profile=claims.profile,
            source="presigned",
        )
        try:
            await producer.send("uploaded", event)
        except BrokerUnavailable as exc:
            raise ApiError(
                503, "broker_unavailable", f"The upload could not be queued: {exc.message}"
            ) from exc
        return service.accepted(event)

    return app


def respond(error: ApiError) -> JSONResponse:
    """Return ``error`` as its JSON response: ``{"reason", "message"}``, status and headers."""
    return JSONResponse(error.body(), error.status, headers=error.headers)


def main() -> int:
    """Run the upload API until interrupted; return the exit status (2: bad settings)."""
    try:
        settings = load_settings(IngestSettings)
        configure_logging("upload-api", level=settings.log_level, json_lines=settings.log_json)
        app = create_api(settings)
    except ConfigurationError as exc:
        print(f"upload-api: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
