"""The variants app has an agent for every topic its stage consumes, image-deleted included."""

from __future__ import annotations

from darkroom_common.service import missing_handlers
from darkroom_schemas.topics import stage
from darkroom_variants.app import build_app
from darkroom_variants.settings import VariantsSettings


def test_every_consumed_topic_has_an_agent(tmp_path):
    settings = VariantsSettings(topic_prefix="wired.", data_dir=tmp_path)
    app = build_app(settings)
    assert "image-deleted" in stage("variants").consumes
    assert missing_handlers(app, "variants", settings) == []
