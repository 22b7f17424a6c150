"""The ingest Faust app: consumer group ``<topic prefix>ingest``."""

from __future__ import annotations

import faust

from darkroom_common.faust_app import create_app
from darkroom_ingest.agents import attach
from darkroom_ingest.settings import IngestSettings


def app_id(settings: IngestSettings) -> str:
    """Return the Faust app id and consumer group, ``<topic prefix>ingest`` (``darkroom.ingest``).

    It carries the topic prefix because Faust names internal topics after it:
    two deployments (or test runs) on one cluster must not share them.
    """
    return f"{settings.topic_prefix}ingest"


def build_app(settings: IngestSettings) -> faust.App:
    """Return the ingest app with its agent and tables attached."""
    app = create_app(app_id(settings), settings, store="memory://")
    attach(app, settings)
    return app
