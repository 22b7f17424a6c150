"""The registry and the running services agree: every service mounts exactly its routes.

Builds each service's real worker (no broker needed) and compares what it would consume,
the tables it keeps and the routes it runs with the topic registry, which is what
``darkroom topics graph`` prints and the README shows.
"""

from __future__ import annotations

import pytest

from darkroom_catalog.app import build_app as build_catalog
from darkroom_catalog.settings import CatalogSettings
from darkroom_ingest.app import build_app as build_ingest
from darkroom_ingest.settings import IngestSettings
from darkroom_raw_provider.app import build_app as build_raw_provider
from darkroom_raw_provider.settings import RawProviderSettings
from darkroom_runtime import StageApp
from darkroom_schemas.topics import STAGES, TOPICS, stage
from darkroom_variants.app import build_app as build_variants
from darkroom_variants.settings import VariantsSettings

BUILDERS = {
    "ingest": lambda d: build_ingest(IngestSettings(data_dir=d, topic_prefix="reg.")),
    "raw-provider": lambda d: build_raw_provider(
        RawProviderSettings(data_dir=d, topic_prefix="reg.")
    ),
    "variants": lambda d: build_variants(VariantsSettings(data_dir=d, topic_prefix="reg.")),
    "catalog": lambda d: build_catalog(
        CatalogSettings(data_dir=d, topic_prefix="reg."), store="memory"
    ),
}


def test_every_registry_stage_has_a_service():
    assert sorted(BUILDERS) == sorted(s.name for s in STAGES)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_each_service_mounts_exactly_its_registry_routes_and_tables(name, tmp_path):
    app: StageApp = BUILDERS[name](tmp_path)
    spec = stage(name)
    assert app.topics == sorted(f"reg.{t}" for t in spec.consumes)
    assert sorted(app.tables) == sorted(spec.state)
    assert {t.changelog for t in app.tables.values()} == {
        f"reg.{spec.changelog(t)}" for t in spec.state
    }
    mounted = {
        topic.removeprefix("reg."): bound.spec
        for lane in app._lanes.values()
        for topic, bound in lane.routes.items()
    }
    assert mounted == {r.topic: r for r in spec.routes}


def test_every_topic_declares_its_key_and_who_writes_and_reads_it():
    for spec in TOPICS.values():
        assert spec.key, spec.name
        assert spec.producers, f"nobody writes {spec.name}"
        if spec.kind in ("event", "repartition"):
            assert spec.consumers, f"nobody reads {spec.name}"
    assert TOPICS["uploaded"].producers[:1] == ("upload API",)
    assert "ingest" in TOPICS["uploaded"].consumers
    assert TOPICS["ingest.uploaded-by-gallery"].key == "gallery_id"
