"""The S3 backend, on aiobotocore, for AWS S3 and S3-compatible servers (S3Proxy, MinIO...).

Requests are signed with SigV4 and use path-style addressing
(``http://host/bucket/key``), which every S3-compatible server understands.
Flexible checksums (botocore >= 1.36 sends CRC32 by default) are only used
where the API requires them, because many S3-compatible servers reject them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Iterator, Mapping
from datetime import UTC
from typing import TYPE_CHECKING, Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)

from darkroom_common.errors import (
    ConfigurationError,
    ObjectNotFound,
    PermanentError,
    StorageUnavailable,
)
from darkroom_common.storage.base import (
    DEFAULT_CHUNK_BYTES,
    ObjectInfo,
    ObjectStore,
    PutData,
    _check_page_size,
    iter_chunks,
    validate_content_type,
    validate_metadata,
)
from darkroom_common.storage.config import MAX_PRESIGN_EXPIRY_S, StorageSettings
from darkroom_common.storage.errors import InvalidObject, StorageAccessDenied
from darkroom_common.storage.keys import validate_key, validate_prefix

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

log = logging.getLogger(__name__)

MAX_PARTS = 10_000
"""Most parts one multipart upload may have (S3 API, UploadPart)."""

_NOT_FOUND = {"NoSuchKey", "NotFound", "404"}
_DENIED = {
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AllAccessDisabled",
}
_THROTTLED = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "ServiceUnavailable",
    "InternalError",
    "503",
    "500",
}


def _etag(value: str) -> str:
    return value.strip('"')


class S3Store(ObjectStore):
    """An :class:`ObjectStore` on an S3 bucket, through aiobotocore.

    The client is created on first use and released by :meth:`close`.
    Uploads larger than ``settings.multipart_threshold_bytes`` use multipart
    upload with parts of ``settings.multipart_part_bytes``, so at most about
    one part is held in memory; a failed or cancelled multipart upload is
    aborted, leaving no object and no stored parts.

    Error mapping: ``NoSuchKey``/404 -> ``ObjectNotFound``; 5xx, throttling,
    connection failures and timeouts -> ``StorageUnavailable`` (retriable,
    after botocore's own ``settings.max_attempts`` attempts); 403 and bad
    signatures -> ``StorageAccessDenied``; a missing bucket or credentials ->
    ``ConfigurationError``; other 4xx -> ``PermanentError``.

    Args:
        settings: the storage settings; ``bucket`` is required.

    Raises:
        ConfigurationError: ``settings.bucket`` is not set.
    """

    def __init__(self, settings: StorageSettings) -> None:
        if not settings.bucket:
            raise ConfigurationError("S3Store needs settings.bucket")
        self.settings = settings
        self.bucket: str = settings.bucket
        self._client: S3Client | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"S3Store(endpoint_url={self.settings.endpoint_url!r}, bucket={self.bucket!r})"

    def _config(self) -> AioConfig:
        s = self.settings
        return AioConfig(
            region_name=s.region,
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=s.connect_timeout_s,
            read_timeout=s.read_timeout_s,
            retries={"total_max_attempts": s.max_attempts, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )

    async def client(self) -> S3Client:
        """Return the aiobotocore S3 client, creating it on first use.

        For operations this port does not cover (bucket policies, lifecycle...).
        """
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                s = self.settings
                stack = contextlib.AsyncExitStack()
                kwargs: dict[str, Any] = {
                    "region_name": s.region,
                    "endpoint_url": s.endpoint_url,
                    "config": self._config(),
                }
                if s.access_key_id is not None and s.secret_access_key is not None:
                    kwargs["aws_access_key_id"] = s.access_key_id.get_secret_value()
                    kwargs["aws_secret_access_key"] = s.secret_access_key.get_secret_value()
                self._client = await stack.enter_async_context(
                    get_session().create_client("s3", **kwargs)
                )
                self._stack = stack
        return self._client

    async def close(self) -> None:
        """Close the HTTP connection pool; a later call creates a new client."""
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    @contextlib.contextmanager
    def _errors(self, action: str, key: str | None = None) -> Iterator[None]:
        """Translate botocore/aiohttp failures into the Darkroom error tree."""
        where = f"{action} s3://{self.bucket}/{key or ''}"
        try:
            yield
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            message = err.get("Message") or code
            if code in _NOT_FOUND or (
                status == 404 and code not in {"NoSuchBucket", "NoSuchUpload"}
            ):
                raise ObjectNotFound(
                    f"no object under key {key!r} in bucket {self.bucket!r}"
                ) from exc
            if code == "NoSuchBucket":
                raise ConfigurationError(
                    f"bucket {self.bucket!r} does not exist at {self.settings.endpoint_url or 'AWS'}"
                ) from exc
            if code in _DENIED or status == 403:
                raise StorageAccessDenied(
                    f"{where} was refused ({code}: {message}); check the access key, "
                    "secret key, region and the bucket's permissions"
                ) from exc
            if code in _THROTTLED or status >= 500 or status == 429:
                raise StorageUnavailable(f"{where} failed ({code or status}: {message})") from exc
            raise PermanentError(
                f"{where} failed ({code or status}: {message})", reason_code="storage_rejected"
            ) from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise ConfigurationError(f"no usable S3 credentials for {where}: {exc}") from exc
        except (HTTPClientError, ConnectionError, IncompleteReadError) as exc:
            raise StorageUnavailable(f"{where} could not reach the store: {exc}") from exc
        except BotoCoreError as exc:
            raise PermanentError(f"{where} failed: {exc}", reason_code="storage_rejected") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise StorageUnavailable(f"{where} could not reach the store: {exc!r}") from exc

    # -- writing --------------------------------------------------------------

    async def put(
        self,
        key: str,
        data: PutData,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """See :meth:`ObjectStore.put`: one ``PutObject`` up to the threshold, else multipart.

        Raises (besides those of :meth:`ObjectStore.put`):
            InvalidObject: the object would need more than :data:`MAX_PARTS` parts.
        """
        validate_key(key)
        content_type = validate_content_type(content_type)
        meta = validate_metadata(metadata)
        client = await self.client()
        threshold = self.settings.multipart_threshold_bytes
        part_bytes = self.settings.multipart_part_bytes
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in iter_chunks(data):
                buffer += chunk
                if upload_id is None and len(buffer) > threshold:
                    with self._errors("start multipart upload of", key):
                        started = await client.create_multipart_upload(
                            Bucket=self.bucket, Key=key, ContentType=content_type, Metadata=meta
                        )
                    upload_id = started["UploadId"]
                while upload_id is not None and len(buffer) >= part_bytes:
                    await self._upload_part(
                        client, key, upload_id, parts, bytes(buffer[:part_bytes])
                    )
                    del buffer[:part_bytes]
            if upload_id is None:
                with self._errors("put", key):
                    await client.put_object(
                        Bucket=self.bucket,
                        Key=key,
                        Body=bytes(buffer),
                        ContentType=content_type,
                        Metadata=meta,
                    )
            else:
                if buffer or not parts:
                    await self._upload_part(client, key, upload_id, parts, bytes(buffer))
                buffer.clear()
                with self._errors("complete multipart upload of", key):
                    await client.complete_multipart_upload(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                    )
                upload_id = None
        except BaseException:
            if upload_id is not None:
                # Shielded so a cancelled put still releases the stored parts.
                await asyncio.shield(self._abort(client, key, upload_id))
            raise
        return await self.head(key)

    async def _upload_part(
        self, client: S3Client, key: str, upload_id: str, parts: list[dict[str, Any]], body: bytes
    ) -> None:
        number = len(parts) + 1
        if number > MAX_PARTS:
            raise InvalidObject(
                f"{key!r} needs more than {MAX_PARTS} parts of "
                f"{self.settings.multipart_part_bytes} bytes; raise multipart_part_bytes",
                reason_code="object_too_large",
            )
        with self._errors(f"upload part {number} of", key):
            resp = await client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
        parts.append({"PartNumber": number, "ETag": resp["ETag"]})

    async def _abort(self, client: S3Client, key: str, upload_id: str) -> None:
        try:
            await client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (BotoCoreError, ClientError, aiohttp.ClientError, TimeoutError) as exc:
            # The original error matters more; a bucket lifecycle rule can reap the parts.
            log.warning("could not abort multipart upload %s of %r: %s", upload_id, key, exc)

    # -- reading --------------------------------------------------------------

    async def head(self, key: str) -> ObjectInfo:
        """See :meth:`ObjectStore.head` (one ``HeadObject`` request)."""
        validate_key(key)
        client = await self.client()
        with self._errors("head", key):
            resp = await client.head_object(Bucket=self.bucket, Key=key)
        return ObjectInfo(
            key=key,
            size=int(resp["ContentLength"]),
            etag=_etag(resp["ETag"]),
            content_type=resp.get("ContentType"),
            last_modified=resp["LastModified"].astimezone(UTC),
            metadata=dict(resp.get("Metadata", {})),
        )

    async def get(
        self, key: str, *, chunk_size: int = DEFAULT_CHUNK_BYTES
    ) -> AsyncGenerator[bytes, None]:
        """See :meth:`ObjectStore.get` (one ``GetObject`` request, body streamed)."""
        validate_key(key)
        client = await self.client()
        with self._errors("get", key):
            resp = await client.get_object(Bucket=self.bucket, Key=key)
        body = resp["Body"]
        try:
            while True:
                with self._errors("read", key):
                    chunk = await body.read(chunk_size)
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    async def list(
        self, prefix: str = "", *, page_size: int = 1000
    ) -> AsyncGenerator[ObjectInfo, None]:
        """See :meth:`ObjectStore.list` (``ListObjectsV2``, ``page_size`` keys per request)."""
        validate_prefix(prefix)
        _check_page_size(page_size)
        client = await self.client()
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": page_size}
            if token:
                kwargs["ContinuationToken"] = token
            with self._errors("list", prefix):
                page = await client.list_objects_v2(**kwargs)
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=item["Key"],
                    size=int(item["Size"]),
                    etag=_etag(item["ETag"]),
                    content_type=None,
                    last_modified=item["LastModified"].astimezone(UTC),
                    metadata={},
                )
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    # -- deleting -------------------------------------------------------------

    async def delete(self, key: str) -> None:
        """See :meth:`ObjectStore.delete` (``DeleteObject``, which S3 answers 204 for a missing key)."""
        validate_key(key)
        client = await self.client()
        with self._errors("delete", key):
            await client.delete_object(Bucket=self.bucket, Key=key)

    # -- presigning -----------------------------------------------------------

    def _expiry(self, expires_s: int | None) -> int:
        expires = self.settings.presign_expiry_s if expires_s is None else expires_s
        if not 1 <= expires <= MAX_PRESIGN_EXPIRY_S:
            raise InvalidObject(
                f"presigned URLs last 1..{MAX_PRESIGN_EXPIRY_S} s, not {expires}",
                reason_code="invalid_argument",
            )
        return expires

    async def presign_put(
        self, key: str, *, expires_s: int | None = None, content_type: str | None = None
    ) -> str:
        """See :meth:`ObjectStore.presign_put`; ``expires_s`` defaults to ``settings.presign_expiry_s``.

        The URL is signed for ``settings.endpoint_url``; no request is sent.
        """
        validate_key(key)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if content_type is not None:
            params["ContentType"] = validate_content_type(content_type)
        client = await self.client()
        with self._errors("presign put", key):
            return await client.generate_presigned_url(
                "put_object", Params=params, ExpiresIn=self._expiry(expires_s), HttpMethod="PUT"
            )

    async def presign_get(self, key: str, *, expires_s: int | None = None) -> str:
        """See :meth:`ObjectStore.presign_get`; ``expires_s`` defaults to ``settings.presign_expiry_s``."""
        validate_key(key)
        client = await self.client()
        with self._errors("presign get", key):
            return await client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=self._expiry(expires_s),
                HttpMethod="GET",
            )

    # -- bucket ---------------------------------------------------------------

    async def ensure_bucket(self) -> bool:
        """Create the bucket if it does not exist; return whether it was created.

        Raises:
            StorageUnavailable, StorageAccessDenied, PermanentError (e.g. the name
            is taken by another account).
        """
        client = await self.client()
        try:
            with self._errors("head bucket"):
                await client.head_bucket(Bucket=self.bucket)
            return False
        except (ObjectNotFound, ConfigurationError):
            pass
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.settings.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.region}
        try:
            with self._errors("create bucket"):
                await client.create_bucket(**kwargs)
        except PermanentError as exc:
            if isinstance(exc.__cause__, ClientError) and exc.__cause__.response.get(
                "Error", {}
            ).get("Code") in {"BucketAlreadyOwnedByYou"}:
                return False
            raise
        return True
