"""Settings of the catalog service (env prefix ``DARKROOM_CATALOG_``, shared ``DARKROOM_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from darkroom_common.settings import DarkroomSettings


class CatalogSettings(DarkroomSettings):
    """Settings of the catalog stage; every field of :class:`DarkroomSettings` applies."""

    service = "catalog"
    model_config = SettingsConfigDict(env_prefix="DARKROOM_CATALOG_")
