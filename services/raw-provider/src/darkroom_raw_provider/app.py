"""The raw-provider Faust app: consumer group ``darkroom-raw-provider``."""

from __future__ import annotations

import faust

from darkroom_common.faust_app import create_app
from darkroom_raw_provider.agents import attach
from darkroom_raw_provider.settings import RawProviderSettings

APP_ID = "darkroom-raw-provider"


def build_app(settings: RawProviderSettings) -> faust.App:
    """Return the raw-provider app with its agent attached."""
    app = create_app(APP_ID, settings)
    attach(app, settings)
    return app
