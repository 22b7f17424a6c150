"""Settings of the variants service (env prefix ``DARKROOM_VARIANTS_``, shared ``DARKROOM_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from darkroom_common.settings import DarkroomSettings


class VariantsSettings(DarkroomSettings):
    """Settings of the variants stage; every field of :class:`DarkroomSettings` applies."""

    service = "variants"
    model_config = SettingsConfigDict(env_prefix="DARKROOM_VARIANTS_")
