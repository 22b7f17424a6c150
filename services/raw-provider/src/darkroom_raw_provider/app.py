"""The raw-provider Faust app: its consumer group is ``darkroom-raw-provider``."""

from __future__ import annotations

import faust

from darkroom_common.faust_app import create_app
from darkroom_raw_provider.settings import RawProviderSettings

APP_ID = "darkroom-raw-provider"


def build_app(settings: RawProviderSettings) -> faust.App:
    """Return the raw-provider app with its agents attached."""
    return create_app(APP_ID, settings, store="memory://")
