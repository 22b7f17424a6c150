"""The ingest Faust app: consumer group ``darkroom-ingest``."""

from __future__ import annotations

import faust

from darkroom_common.faust_app import create_app
from darkroom_ingest.agents import attach
from darkroom_ingest.settings import IngestSettings

APP_ID = "darkroom-ingest"


def build_app(settings: IngestSettings) -> faust.App:
    """Return the ingest app with its agent and tables attached."""
    app = create_app(APP_ID, settings, store="memory://")
    attach(app, settings)
    return app
