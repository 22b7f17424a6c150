"""Settings of the raw-provider service (env prefix ``DARKROOM_RAW_PROVIDER_``, shared ``DARKROOM_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from darkroom_common.settings import DarkroomSettings


class RawProviderSettings(DarkroomSettings):
    """RAW development policy and bounds."""

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
