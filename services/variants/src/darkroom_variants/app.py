"""The variants Faust app: consumer group ``darkroom-variants`` (planner + render workers)."""

from __future__ import annotations

import faust

from darkroom_common.faust_app import create_app
from darkroom_variants.agents import attach
from darkroom_variants.settings import VariantsSettings

APP_ID = "darkroom-variants"


def build_app(settings: VariantsSettings) -> faust.App:
    """Return the variants app with its planner and render agents attached."""
    app = create_app(APP_ID, settings)
    attach(app, settings)
    return app
