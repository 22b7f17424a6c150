"""The variants Faust app: consumer group ``<topic prefix>variants`` (planner + render workers)."""

from __future__ import annotations

import faust

from darkroom_common.faust_app import create_app
from darkroom_variants.agents import attach
from darkroom_variants.settings import VariantsSettings


def app_id(settings: VariantsSettings) -> str:
    """Return the Faust app id and consumer group, ``<topic prefix>variants`` (``darkroom.variants``).

    It carries the topic prefix because Faust names internal topics after it:
    two deployments (or test runs) on one cluster must not share them.
    """
    return f"{settings.topic_prefix}variants"


def build_app(settings: VariantsSettings) -> faust.App:
    """Return the variants app with its planner and render agents attached."""
    app = create_app(app_id(settings), settings)
    attach(app, settings)
    return app
