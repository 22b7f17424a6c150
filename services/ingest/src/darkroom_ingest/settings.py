"""Settings of the ingest service (env prefix ``DARKROOM_INGEST_``, shared ``DARKROOM_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from darkroom_common.settings import DarkroomSettings


class IngestSettings(DarkroomSettings):
    """Settings of the ingest stage; every field of :class:`DarkroomSettings` applies."""

    service = "ingest"
    model_config = SettingsConfigDict(env_prefix="DARKROOM_INGEST_")
