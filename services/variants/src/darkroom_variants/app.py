"""The variants Faust app: its consumer group is ``darkroom-variants``."""

from __future__ import annotations

import faust

from darkroom_common.faust_app import create_app
from darkroom_variants.settings import VariantsSettings

APP_ID = "darkroom-variants"


def build_app(settings: VariantsSettings) -> faust.App:
    """Return the variants app with its agents attached."""
    return create_app(APP_ID, settings, store="memory://")
