"""Settings of the variants service (env prefix ``DARKROOM_VARIANTS_``, shared ``DARKROOM_``).

``profiles_dir`` (extra ``<name>.json`` profiles) is a shared setting:
``DARKROOM_PROFILES_DIR``, or ``DARKROOM_VARIANTS_PROFILES_DIR`` for this service alone.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from darkroom_common.settings import DarkroomSettings


class VariantsSettings(DarkroomSettings):
    """Planner and render-worker settings."""

    service = "variants"
    model_config = SettingsConfigDict(env_prefix="DARKROOM_VARIANTS_")

    web_port: int = Field(default=6068, ge=1, le=65535)
    default_profile: str = Field(
        default="default", description="Profile when an upload names none."
    )
    batch_max: int = Field(
        default=32, ge=1, le=1024, description="Most variant requests a worker takes at once."
    )
    batch_window_s: float = Field(
        default=0.25, gt=0, le=10, description="How long a worker waits to fill a batch, seconds."
    )
    replay_batch_max: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Most replay-lane requests rendered at once (small: live first).",
    )
    replay_quiet_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="Idle time the live lane needs before a replay batch starts.",
    )
    render_threads: int = Field(
        default=1, ge=1, le=64, description="Sources rendered at once (libvips threads each)."
    )
    background: str = Field(
        default="#ffffff",
        pattern=r"^#[0-9a-fA-F]{6}$",
        description="What transparency is flattened onto for formats without alpha (#rrggbb).",
    )
    max_pixels: int = Field(
        default=200_000_000, ge=1, description="Most pixels (width x height) a source may have."
    )
    work_dir: str | None = Field(
        default=None, description="Where sources are downloaded to render; default the temp folder."
    )
    gallery_settings_wait_s: float = Field(
        default=30.0,
        gt=0,
        description="How long an event waits for the gallery-settings topic to be read "
        "before it is retried.",
    )
