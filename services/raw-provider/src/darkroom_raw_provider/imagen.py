"""The ``imagen`` provider: RAW development by an external HTTP service following Imagen AI's public API.

One project per development (the project uuid is the provider's job id, set on
the emitted ``ValidatedV1.provider_job_id``)::

    POST /projects/                                      -> project uuid
    POST /projects/{uuid}/get_temporary_upload_links     -> presigned PUT links
    PUT  <link>  (the RAW's bytes; no API key)
    POST /projects/{uuid}/edit             {"profile_key": …}
    GET  /projects/{uuid}/edit/status      poll: PENDING, IN PROGRESS, COMPLETED, FAILED
    POST /projects/{uuid}/export
    GET  /projects/{uuid}/export/status    poll
    GET  /projects/{uuid}/export/get_temporary_download_links -> presigned GET links
    GET  <link>  (the developed JPEG; becomes masters/<gallery>/<image>/master.jpg)

Every API request carries the ``x-api-key`` header; the presigned links never
do. Statuses are compared case-insensitively (``In Progress`` = ``IN_PROGRESS``).
Polls wait with capped exponential backoff. A request answered 429 or 5xx, or
cut off, is retried after the server's ``Retry-After`` (seconds or an HTTP
date) or a capped exponential backoff; once those retries are spent it raises
:class:`~darkroom_common.errors.ProviderUnavailable` and the stage runner
retries the event. Outcomes that no retry can change are rejections::

    provider_timeout         the overall deadline (ImagenSettings.deadline_s) passed
    provider_failed          the provider reported the edit or export FAILED
    provider_auth_failed     the API answered 401/403: the API key is wrong
    provider_rejected        any other 4xx
    provider_bad_response    an answer that is not the JSON this contract describes
    provider_bad_output      the developed file is not a JPEG, or too large
    provider_not_configured  no API key is set

The API key is never logged nor put in an error message (any text that would
carry it has it replaced by ``***``).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from darkroom_common.errors import ObjectNotFound, ProviderUnavailable
from darkroom_common.metrics import Metrics
from darkroom_common.objects import download, master_key, put_counted
from darkroom_common.storage import ObjectStore
from darkroom_imaging.outcomes import Failure
from darkroom_imaging.probe import probe
from darkroom_raw_provider.providers import derived_fields, master_metadata, rejection
from darkroom_raw_provider.settings import ImagenSettings
from darkroom_schemas import ProbeInfo, ValidatedV1

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
CHUNK = 1024 * 1024


class ProviderRejected(Exception):
    """A development the provider will not complete; carries the rejection's reason code."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message


def normalise_status(value: object) -> str:
    """Return a status in one spelling: ``"In progress"``, ``in_progress`` → ``IN PROGRESS``."""
    return " ".join(str(value).replace("_", " ").replace("-", " ").upper().split())


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header (RFC 9110 §10.2.3): delay-seconds or an HTTP date.

    Returns:
        Seconds to wait (never negative), or None when absent or unparsable.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _data(response: httpx.Response, what: str) -> Any:
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderRejected(
            "provider_bad_response", f"The provider's answer to {what} is not JSON."
        ) from exc
    return body.get("data", body) if isinstance(body, dict) else body


def _links(data: Any, field: str, what: str) -> list[tuple[str, str]]:
    """Return ``(file_name, link)`` pairs from a links answer (a list, or ``{"files_list": [...]}``)."""
    items = data.get("files_list", data.get("links")) if isinstance(data, dict) else data
    pairs = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get(field), str):
            pairs.append((str(item.get("file_name", "")), item[field]))
    if not pairs:
        raise ProviderRejected(
            "provider_bad_response", f"The provider's answer to {what} holds no {field}."
        )
    return pairs


@dataclass(slots=True)
class Counters:
    """What one client did, for tests and logs: HTTP retries and status polls."""

    retries: int = 0
    polls: int = 0


class ImagenClient:
    """An async client of the Imagen-style API; one per provider, reused across jobs.

    Args:
        settings: base URL, timeouts, retry and poll bounds.
        api_key: sent as ``x-api-key`` to the API (never to presigned links).
        metrics: where requests and poll times are counted.
        transport: an httpx transport (tests may hand one in); the default is the network.
        sleep: how to wait (``asyncio.sleep``).
    """

    def __init__(
        self,
        settings: ImagenSettings,
        api_key: str,
        *,
        metrics: Metrics,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._secret = api_key
        timeout = httpx.Timeout(settings.request_timeout_s)
        self._api = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/") + "/",
            headers={"x-api-key": api_key},
            timeout=timeout,
            transport=transport,
        )
        self._links = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._sleep = sleep
        self.counters = Counters()

    def redact(self, text: str) -> str:
        """Return ``text`` with the API key replaced by ``***``."""
        return text.replace(self._secret, "***") if self._secret else text

    async def aclose(self) -> None:
        """Close both HTTP connection pools."""
        await self._api.aclose()
        await self._links.aclose()

    def _count(self, what: str, status: str) -> None:
        self.metrics.provider_requests.labels("imagen", what, status).inc()

    def _backoff(self, attempt: int) -> float:
        return float(min(self.settings.backoff_base_s * 2**attempt, self.settings.backoff_max_s))

    async def request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        presigned: bool = False,
        build: Callable[[], dict[str, Any]] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send one request, retrying 429/5xx/transport errors; return the 2xx response.

        ``build()`` returns the request's keyword arguments afresh for each try
        (a body iterator can be read once). With ``stream`` the response body is
        not read: the caller reads it and closes the response.

        Raises:
            ProviderRejected: 401/403 (``provider_auth_failed`` on the API) or another 4xx.
            ProviderUnavailable: the retries are spent.
        """
        client = self._links if presigned else self._api
        target = "a presigned link" if presigned else url
        last = ""
        for attempt in range(self.settings.http_retries + 1):
            try:
                req = client.build_request(method, url, **(build() if build else {}))
                response = await client.send(req, stream=stream)
            except httpx.TransportError as exc:
                last = type(exc).__name__
                delay = self._backoff(attempt)
                self._count(what, type(exc).__name__)
            else:
                status = response.status_code
                self._count(what, str(status))
                if status < 400:
                    return response
                if stream:
                    await response.aread()
                    await response.aclose()
                if status == 429 or status >= 500:
                    last = f"HTTP {status}"
                    hinted = retry_after_seconds(response.headers.get("retry-after"))
                    delay = (
                        min(hinted, self.settings.retry_after_max_s)
                        if hinted is not None
                        else self._backoff(attempt)
                    )
                elif status in (401, 403) and not presigned:
                    raise ProviderRejected(
                        "provider_auth_failed",
                        f"The RAW provider refused the API key (HTTP {status}) on {what}; "
                        "check DARKROOM_RAW_PROVIDER_IMAGEN__API_KEY or its secrets file.",
                    )
                else:
                    snippet = self.redact(response.text[:200].strip())
                    raise ProviderRejected(
                        "provider_rejected",
                        f"The RAW provider answered HTTP {status} to {what} ({target}): {snippet}",
                    )
            if attempt == self.settings.http_retries:
                break
            self.counters.retries += 1
            log.warning(
                "retrying a RAW provider request",
                extra={"what": what, "error": last, "wait_s": round(delay, 3)},
            )
            await self._sleep(delay)
        raise ProviderUnavailable(
            f"the RAW provider did not complete {what} after "
            f"{self.settings.http_retries + 1} tries (last: {last})"
        )

    async def create_project(self, name: str) -> str:
        """``POST /projects/``; return the project uuid."""
        response = await self.request(
            "POST", "projects/", "project creation", build=lambda: {"json": {"name": name}}
        )
        data = _data(response, "project creation")
        project = data.get("project_uuid") or data.get("uuid") if isinstance(data, dict) else None
        if not isinstance(project, str) or not project:
            raise ProviderRejected(
                "provider_bad_response", "The provider's new project has no project_uuid."
            )
        return project

    async def upload(self, project: str, file_name: str, path: Path) -> None:
        """Ask for a presigned link for ``file_name`` and PUT ``path``'s bytes to it (streamed)."""
        response = await self.request(
            "POST",
            f"projects/{project}/get_temporary_upload_links",
            "the upload links",
            build=lambda: {"json": {"files_list": [{"file_name": file_name}]}},
        )
        pairs = _links(_data(response, "the upload links"), "upload_link", "the upload links")
        link = next((u for n, u in pairs if n == file_name), pairs[0][1])
        size = path.stat().st_size

        async def chunks() -> AsyncIterator[bytes]:
            with path.open("rb") as f:
                while chunk := await asyncio.to_thread(f.read, CHUNK):
                    yield chunk

        # S3 presigned PUTs refuse chunked transfer encoding: send the length.
        await self.request(
            "PUT",
            link,
            "the RAW upload",
            presigned=True,
            build=lambda: {"content": chunks(), "headers": {"content-length": str(size)}},
        )

    async def start(self, project: str, step: str, body: dict[str, Any] | None = None) -> None:
        """``POST /projects/{uuid}/{step}`` (``edit`` or ``export``)."""
        await self.request(
            "POST",
            f"projects/{project}/{step}",
            f"the {step} request",
            build=lambda: {"json": body or {}},
        )

    async def wait(self, project: str, step: str) -> None:
        """Poll ``GET /projects/{uuid}/{step}/status`` until COMPLETED, with capped exponential backoff.

        Raises:
            ProviderRejected: ``provider_failed`` when the status is FAILED.
        """
        delay = self.settings.poll_initial_s
        started = time.monotonic()
        try:
            await self._poll(project, step, delay)
        finally:
            self.metrics.provider_poll_seconds.labels("imagen", step).observe(
                time.monotonic() - started
            )

    async def _poll(self, project: str, step: str, delay: float) -> None:
        while True:
            response = await self.request(
                "GET", f"projects/{project}/{step}/status", f"the {step} status"
            )
            data = _data(response, f"the {step} status")
            status = normalise_status(data.get("status", "") if isinstance(data, dict) else "")
            self.counters.polls += 1
            if status == "COMPLETED":
                return
            if status == "FAILED":
                details = data.get("details") if isinstance(data, dict) else None
                raise ProviderRejected(
                    "provider_failed",
                    self.redact(
                        f"The RAW provider reports the {step} FAILED"
                        + (f": {str(details)[:200]}" if details else ".")
                    ),
                )
            await self._sleep(delay)
            delay = min(delay * 2, self.settings.poll_max_s)

    async def download(self, project: str, dest: Path) -> None:
        """Fetch the export's download link and stream the developed file into ``dest``.

        Raises:
            ProviderRejected: ``provider_bad_output`` past ``max_output_bytes``.
        """
        what = "the download links"
        response = await self.request(
            "GET", f"projects/{project}/export/get_temporary_download_links", what
        )
        [(_, link), *_] = _links(_data(response, what), "download_link", what)
        got = await self.request("GET", link, "the developed download", presigned=True, stream=True)
        size = 0
        try:
            with dest.open("wb") as f:
                async for chunk in got.aiter_bytes(CHUNK):
                    size += len(chunk)
                    if size > self.settings.max_output_bytes:
                        raise ProviderRejected(
                            "provider_bad_output",
                            f"The developed file exceeds {self.settings.max_output_bytes} bytes.",
                        )
                    f.write(chunk)
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"the developed download was cut off ({type(exc).__name__})"
            ) from exc
        finally:
            await got.aclose()


class ImagenProvider:
    """The ``imagen`` :class:`~darkroom_raw_provider.providers.RawProvider`.

    Args:
        store: where RAW originals are read and masters written.
        settings: the provider's settings (key, deadline, polls, retries).
        metrics: where bytes, requests and poll times are counted.
        work_dir: where temporary files go (system default when None).
        transport, sleep: see :class:`ImagenClient`.
    """

    name = "imagen"

    def __init__(
        self,
        store: ObjectStore,
        settings: ImagenSettings,
        *,
        metrics: Metrics,
        work_dir: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.work_dir = work_dir
        key = settings.key()
        self.client = (
            ImagenClient(
                settings, key.get_secret_value(), metrics=metrics, transport=transport, sleep=sleep
            )
            if key is not None
            else None
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self.client is not None:
            await self.client.aclose()

    def policy(self, event: ValidatedV1) -> str:
        """Return the development policy: the provider's editing profile (``profile_key``)."""
        return f"imagen;profile={self.settings.profile_key}"

    async def develop(self, event: ValidatedV1) -> ValidatedV1:
        """Develop ``event``'s RAW with the provider; return the master's ``validated`` or a rejection.

        Raises:
            ProviderUnavailable: 429/5xx/cut-off past the request retries (retriable).
            StorageUnavailable: the object store failed (retriable).
        """
        if self.client is None:
            return rejection(
                event,
                "provider_not_configured",
                "The imagen RAW provider has no API key "
                "(DARKROOM_RAW_PROVIDER_IMAGEN__API_KEY or __API_KEY_FILE).",
            )
        job: dict[str, str] = {}
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.settings.deadline_s):
                return await self._develop(self.client, event, job)
        except TimeoutError:
            return rejection(
                event,
                "provider_timeout",
                f"The RAW provider did not deliver within {self.settings.deadline_s:g} s.",
                provider_job_id=job.get("project"),
            )
        except ProviderRejected as exc:
            log.warning(
                "the RAW provider rejected a development",
                extra={"reason": exc.reason_code, "provider_job_id": job.get("project")},
            )
            return rejection(
                event,
                exc.reason_code,
                self.client.redact(exc.message),
                provider_job_id=job.get("project"),
            )
        except ProviderUnavailable as exc:
            raise ProviderUnavailable(self.client.redact(exc.message)) from None
        finally:
            log.info(
                "RAW provider job finished",
                extra={
                    "provider_job_id": job.get("project"),
                    "seconds": round(time.monotonic() - started, 3),
                },
            )

    async def _develop(
        self, client: ImagenClient, event: ValidatedV1, job: dict[str, str]
    ) -> ValidatedV1:
        with tempfile.TemporaryDirectory(prefix="darkroom-imagen-", dir=self.work_dir) as tmp:
            raw = Path(tmp) / Path(event.object_key).name
            try:
                await download(self.store, event.object_key, raw, self.metrics)
            except ObjectNotFound:
                return rejection(
                    event,
                    "missing_original",
                    f"The RAW original {event.object_key!r} is no longer in the object store.",
                )
            project = await client.create_project(
                f"darkroom-{event.image_id}-{uuid.uuid4().hex[:8]}"
            )
            job["project"] = project
            log.info("RAW provider project created", extra={"provider_job_id": project})
            await client.upload(project, raw.name, raw)
            await client.start(project, "edit", {"profile_key": self.settings.profile_key})
            await client.wait(project, "edit")
            await client.start(project, "export")
            await client.wait(project, "export")
            out = Path(tmp) / "developed.jpg"
            await client.download(project, out)
            info = await asyncio.to_thread(probe, out, declared_name="developed.jpg")
            if isinstance(info, Failure) or info.format.value != "jpeg":
                detail = info.message if isinstance(info, Failure) else f"a {info.format.value}"
                raise ProviderRejected(
                    "provider_bad_output", f"The provider's developed file is not a JPEG: {detail}"
                )
            data = await asyncio.to_thread(out.read_bytes)
        key = master_key(event.gallery_id, event.image_id)
        master = ValidatedV1(
            **derived_fields(event),
            accepted=True,
            object_key=key,
            sha256=hashlib.sha256(data).hexdigest(),
            is_raw=False,
            provider_job_id=project,
            probe=ProbeInfo(
                format="jpeg",
                mime_type="image/jpeg",
                width=info.width,
                height=info.height,
                pixels=info.width * info.height,
                bit_depth=8,
                colour_space="srgb",
                orientation=info.orientation,
            ),
        )
        await put_counted(
            self.store,
            key,
            data,
            self.metrics,
            content_type="image/jpeg",
            metadata=master_metadata(event, master, provider=self.name, policy=self.policy(event)),
        )
        return master
