"""Settings of the ingest service (env prefix ``DARKROOM_INGEST_``, shared ``DARKROOM_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from darkroom_common.settings import DarkroomSettings

SUPPORTED_FORMATS = (
    "jpeg", "png", "webp", "gif", "tiff", "heic", "avif",
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
