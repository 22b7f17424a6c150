"""Settings of the raw-provider service (env prefix ``DARKROOM_RAW_PROVIDER_``, shared ``DARKROOM_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from darkroom_common.settings import DarkroomSettings


class RawProviderSettings(DarkroomSettings):
    """Settings of the raw-provider stage; every field of :class:`DarkroomSettings` applies."""

    service = "raw-provider"
    model_config = SettingsConfigDict(env_prefix="DARKROOM_RAW_PROVIDER_")
