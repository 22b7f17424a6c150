"""The raw-provider Faust app: consumer group ``<topic prefix>raw-provider``."""

from __future__ import annotations

import faust

from darkroom_common.faust_app import create_app
from darkroom_raw_provider.agents import attach
from darkroom_raw_provider.settings import RawProviderSettings


def app_id(settings: RawProviderSettings) -> str:
    """Return the Faust app id and consumer group, ``<topic prefix>raw-provider`` (``darkroom.raw-provider``).

    It carries the topic prefix because Faust names internal topics after it:
    two deployments (or test runs) on one cluster must not share them.
    """
    return f"{settings.topic_prefix}raw-provider"


def build_app(settings: RawProviderSettings) -> faust.App:
    """Return the raw-provider app with its agent attached."""
    app = create_app(app_id(settings), settings)
    attach(app, settings)
    return app
