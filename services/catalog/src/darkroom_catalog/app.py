"""The catalog Faust app: its consumer group is ``darkroom-catalog``."""

from __future__ import annotations

import faust

from darkroom_catalog.settings import CatalogSettings
from darkroom_common.faust_app import create_app

APP_ID = "darkroom-catalog"


def build_app(settings: CatalogSettings) -> faust.App:
    """Return the catalog app with its agents attached."""
    return create_app(APP_ID, settings, store="rocksdb://")
