"""Settings of the ingest service (env prefix ``DARKROOM_INGEST_``, shared ``DARKROOM_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from darkroom_common.settings import DarkroomSettings

SUPPORTED_EXTENSIONS = (
    "jpg", "jpeg", "jpe", "png", "webp", "gif", "tif", "tiff", "heic", "heif", "avif", "jxl",
    "cr2", "cr3", "nef", "nrw", "arw", "dng", "raf", "orf", "rw2", "pef", "srw", "kdc",
)  # fmt: skip
"""File name extensions the upload API accepts (lower case, without the dot)."""

SUPPORTED_FORMATS = (
    "jpeg", "png", "webp", "gif", "tiff", "heic", "avif", "jxl",
    "cr2", "cr3", "nef", "nrw", "arw", "dng", "raf", "orf", "rw2", "pef", "srw", "kdc",
)  # fmt: skip


class IngestSettings(DarkroomSettings):
    """Validation limits and policy of the ingest stage."""

    service = "ingest"
    model_config = SettingsConfigDict(env_prefix="DARKROOM_INGEST_")

    web_port: int = Field(default=6066, ge=1, le=65535)
    max_upload_bytes: int = Field(
        default=200 * 1024 * 1024, ge=1, description="Largest original accepted, in bytes."
    )
    max_pixels: int = Field(
        default=200_000_000,
        ge=1,
        description="Largest width × height accepted (decompression bombs).",
    )
    allowed_formats: list[str] = Field(
        default=list(SUPPORTED_FORMATS),
        description="Formats accepted, by the probe's names (real content, not the extension).",
    )
    max_images_per_gallery: int = Field(default=10_000, ge=1)
    default_profile: str = Field(
        default="default", description="Variant profile when an upload names none."
    )
    work_dir: str | None = Field(default=None, description="Temp folder for downloaded originals.")
    gallery_settings_wait_s: float = Field(
        default=15.0,
        gt=0,
        description="How long an event waits for the gallery-settings topic to be read (s); "
        "then it is retried.",
    )

    # The upload API (``python -m darkroom_ingest.api``).
    api_host: str = Field(default="127.0.0.1", description="Address the upload API listens on.")
    api_port: int = Field(default=8080, ge=1, le=65535, description="Port of the upload API.")
    public_url: str | None = Field(
        default=None,
        description="Base URL clients reach the upload API at; "
        "http://<api_host>:<api_port> when unset.",
    )
    catalog_api_url: str | None = Field(
        default=None,
        description="Base URL of the catalog API: job URLs point there, and the upload API asks "
        "it for a gallery's image count (429 early); unset: job URLs use public_url and only "
        "the ingest stage enforces the limit.",
    )
    catalog_api_key: SecretStr | None = Field(
        default=None,
        description="Key (read scope) for the catalog API; unset: the caller's key is forwarded.",
    )
    allowed_extensions: list[str] = Field(
        default=list(SUPPORTED_EXTENSIONS),
        description="File name extensions the upload API accepts (lower case, no dot); "
        "anything else is 415 unsupported_extension.",
    )
    upload_token_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key signing presigned-upload ids; set it (the same on every API "
        "instance) so ids survive restarts. Unset: a random key per process.",
    )
    upload_token_ttl_s: int = Field(
        default=24 * 3600,
        ge=60,
        description="How long after issue a presigned upload can still be completed (s).",
    )

    def api_base_url(self) -> str:
        """Return the upload API's public base URL, without a trailing ``/``."""
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")
