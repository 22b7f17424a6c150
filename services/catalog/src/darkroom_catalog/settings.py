"""Settings of the catalog service (env prefix ``DARKROOM_CATALOG_``, shared ``DARKROOM_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from darkroom_common.settings import DarkroomSettings


class CatalogSettings(DarkroomSettings):
    """Settings of the catalog stage and its API; every field of :class:`DarkroomSettings` applies.

    The API listens on ``web_host``:``web_port`` (``DARKROOM_CATALOG_WEB_PORT``).
    """

    service = "catalog"
    model_config = SettingsConfigDict(env_prefix="DARKROOM_CATALOG_")

    sse_wait_s: float = Field(
        default=10.0,
        ge=0,
        le=300,
        description="How long GET /v1/jobs/{id}/events waits for a job not in the catalog yet (s).",
    )
    sse_keepalive_s: float = Field(
        default=15.0, gt=0, le=300, description="Seconds between SSE keep-alive comments."
    )
    reconcile_interval_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds between reconciler runs (jobs left queued or processing).",
    )
    reconcile_after_s: float = Field(
        default=1800.0,
        gt=0,
        le=7 * 86400,
        description=(
            "A job non-terminal and unchanged for this long (s) is reconciled: its inputs are "
            "read again from the topics and applied; a processing job with none left to apply "
            "is failed with reason stalled."
        ),
    )
