"""Settings of the object store, embedded as a nested model in each service's settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Self
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from darkroom_common.storage.keys import validate_key

MIB = 1024 * 1024
MIN_PART_BYTES = 5 * MIB
"""Smallest part S3 accepts in a multipart upload, except the last (S3 API, UploadPart)."""
MAX_PART_BYTES = 5 * 1024 * MIB
"""Largest part S3 accepts (5 GiB)."""
MAX_PRESIGN_EXPIRY_S = 7 * 24 * 3600
"""Longest validity of a SigV4 presigned URL (7 days)."""

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class StorageSettings(BaseModel):
    """Where and how Darkroom stores objects.

    Nest it in a service's pydantic-settings class (``storage: StorageSettings``);
    with ``env_nested_delimiter="__"`` it reads e.g. ``DARKROOM_INGEST_STORAGE__BUCKET``.
    Secrets are :class:`~pydantic.SecretStr` and print as ``**********``.

    Raises:
        pydantic.ValidationError: on construction, when a value is out of range,
            ``backend="s3"`` has no valid ``bucket``, or only one of the two keys is set.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["local", "s3"] = Field(
        "local", description="'local': files under `root`; 's3': an S3-compatible server."
    )
    root: Path = Field(
        Path(".darkroom/objects"), description="Folder of the local backend (created on demand)."
    )
    bucket: str | None = Field(
        None, description="S3 bucket name (3-63 of [a-z0-9.-]); required for backend 's3'."
    )
    endpoint_url: str | None = Field(
        None, description="S3 endpoint, e.g. http://127.0.0.1:9000; None means AWS for `region`."
    )
    region: str = Field("us-east-1", description="S3 region used for SigV4 signing.")
    access_key_id: SecretStr | None = Field(
        None, description="S3 access key id; None uses the AWS default credential chain."
    )
    secret_access_key: SecretStr | None = Field(None, description="S3 secret access key.")
    multipart_threshold_bytes: int = Field(
        8 * MIB, ge=1, description="Uploads larger than this use S3 multipart upload (bytes)."
    )
    multipart_part_bytes: int = Field(
        8 * MIB,
        ge=MIN_PART_BYTES,
        le=MAX_PART_BYTES,
        description="Size of each multipart part but the last (bytes, 5 MiB..5 GiB).",
    )
    presign_expiry_s: int = Field(
        900, ge=1, le=MAX_PRESIGN_EXPIRY_S, description="Default validity of presigned URLs (s)."
    )
    public_base_url: str | None = Field(
        None, description="Base URL under which objects are publicly readable (a CDN), if any."
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="S3 TCP connect timeout (seconds).")
    read_timeout_s: float = Field(60.0, gt=0, description="S3 socket read timeout (seconds).")
    max_attempts: int = Field(
        4,
        ge=1,
        le=20,
        description="S3 attempts per request, first try included (botocore 'standard' retries).",
    )

    @model_validator(mode="after")
    def _check_backend(self) -> Self:
        if self.backend == "s3":
            if not self.bucket:
                raise ValueError("storage backend 's3' needs a bucket")
            if not _BUCKET.fullmatch(self.bucket) or ".." in self.bucket:
                raise ValueError(f"{self.bucket!r} is not a valid S3 bucket name")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("set both access_key_id and secret_access_key, or neither")
        return self

    def public_url(self, key: str) -> str | None:
        """Return ``public_base_url/<percent-encoded key>``, or ``None`` without a base URL.

        Raises:
            InvalidKey: ``key`` is not a valid object key.
        """
        validate_key(key)
        if self.public_base_url is None:
            return None
        return f"{self.public_base_url.rstrip('/')}/{quote(key, safe='/')}"
