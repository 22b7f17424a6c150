"""Settings of the raw-provider service (env prefix ``DARKROOM_RAW_PROVIDER_``, shared ``DARKROOM_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from darkroom_common.errors import ConfigurationError
from darkroom_common.settings import DarkroomSettings


class ImagenSettings(BaseModel):
    """The external RAW provider following Imagen AI's public API (``DARKROOM_RAW_PROVIDER_IMAGEN__…``).

    The API key comes from ``api_key`` (``DARKROOM_RAW_PROVIDER_IMAGEN__API_KEY``)
    or, when that is unset, from the file ``api_key_file`` (first line). It is a
    :class:`~pydantic.SecretStr`: it prints as ``**********`` and is never logged.
    """

    base_url: str = Field(
        default="https://api-beta.imagen-ai.com/v1",
        description="The API's base URL; endpoints (/projects/…) are relative to it.",
    )
    api_key: SecretStr | None = Field(default=None, description="Sent as the x-api-key header.")
    api_key_file: Path | None = Field(
        default=None, description="A secrets file holding the API key (used when api_key is unset)."
    )
    profile_key: int = Field(
        default=0, ge=0, description="The Imagen editing profile every project is edited with."
    )
    deadline_s: float = Field(
        default=1800.0,
        gt=0,
        description="Overall bound of one development, seconds; past it the job fails "
        "with provider_timeout.",
    )
    poll_initial_s: float = Field(
        default=2.0, gt=0, description="First wait between status polls, seconds (then doubled)."
    )
    poll_max_s: float = Field(default=30.0, gt=0, description="Longest wait between status polls.")
    request_timeout_s: float = Field(default=60.0, gt=0, description="Bound of one HTTP request.")
    http_retries: int = Field(
        default=5, ge=0, le=50, description="Retries of one request answered 429/5xx or cut off."
    )
    backoff_base_s: float = Field(
        default=0.5,
        gt=0,
        description="First retry wait when no Retry-After is sent (then doubled).",
    )
    backoff_max_s: float = Field(default=30.0, gt=0, description="Longest retry wait, seconds.")
    retry_after_max_s: float = Field(
        default=120.0, gt=0, description="Cap on a server's Retry-After, seconds."
    )
    max_output_bytes: int = Field(
        default=200 * 1024**2, ge=1024, description="Largest developed JPEG accepted, bytes."
    )

    @model_validator(mode="after")
    def _key_file_is_readable(self) -> Self:
        if self.api_key is None and self.api_key_file is not None:
            try:
                self.key()
            except ConfigurationError as exc:
                raise ValueError(exc.message) from None
        return self

    def key(self) -> SecretStr | None:
        """Return the API key: ``api_key``, else the first line of ``api_key_file``, else None.

        Raises:
            ConfigurationError: ``api_key_file`` is set but cannot be read.
        """
        if self.api_key is not None and self.api_key.get_secret_value():
            return self.api_key
        if self.api_key_file is None:
            return None
        try:
            lines = self.api_key_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the Imagen API key file {self.api_key_file}: {exc.strerror}"
            ) from exc
        value = lines[0].strip() if lines else ""
        return SecretStr(value) if value else None


class RawProviderSettings(DarkroomSettings):
    """RAW development policy and bounds, and the external provider."""

    service = "raw-provider"
    model_config = SettingsConfigDict(env_prefix="DARKROOM_RAW_PROVIDER_")

    web_port: int = Field(default=6067, ge=1, le=65535)
    policy: Literal["embedded-preview", "develop"] = Field(
        default="embedded-preview",
        description="Use the camera's embedded JPEG when it covers master_box, else demosaic.",
    )
    master_box: tuple[int, int] = Field(
        default=(1920, 1080),
        description="Largest variant box (width, height px) the master must cover, "
        "as 'inside' fits it: a 3:2 RAW needs a 1620x1080 master for 1920x1080.",
    )
    max_seconds: float = Field(
        default=120.0, gt=0, description="Wall-time bound of one development."
    )
    max_memory_bytes: int = Field(default=3 * 1024**3, ge=256 * 1024**2)
    master_quality: int = Field(default=92, ge=1, le=100)
    work_dir: str | None = None
    imagen: ImagenSettings = Field(
        default_factory=ImagenSettings,
        description="The external provider, used for galleries whose processing_provider is imagen.",
    )
    gallery_settings_wait_s: float = Field(
        default=30.0,
        gt=0,
        description="How long an event waits for the gallery-settings topic to be read "
        "before it is retried.",
    )
