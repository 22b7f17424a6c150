"""``build_app`` mounts every registry route and table of the ingest stage; no broker needed."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from darkroom_common.metrics import Metrics
from darkroom_common.ports import Ports, SystemClock
from darkroom_common.producer import KafkaEventProducer
from darkroom_common.storage import FilesystemStore
from darkroom_ingest.app import build_app
from darkroom_ingest.routes import BY_GALLERY
from darkroom_ingest.settings import IngestSettings
from darkroom_schemas import GallerySettingsV1
from darkroom_schemas.topics import stage


class Galleries:
    async def get(self, gallery_id: str) -> GallerySettingsV1:
        return GallerySettingsV1(gallery_id=gallery_id)


def settings_in(tmp_path: Path) -> IngestSettings:
    return IngestSettings(
        topic_prefix="wired.",
        data_dir=tmp_path / "data",
        storage={"backend": "local", "root": tmp_path / "objects"},
    )


def test_build_app_mounts_every_route_and_table(tmp_path):
    app = build_app(settings_in(tmp_path))
    spec = stage("ingest")
    assert app.topics == sorted(f"wired.{t}" for t in spec.consumes)
    assert sorted(app.tables) == sorted(spec.state)
    for table in app.tables.values():
        assert table.lane == BY_GALLERY
        # Faust's encoding of table keys and values, so its changelogs stay readable.
        assert (table.key_codec, table.value_codec) == ("json", "json")
        assert table.changelog == f"wired.ingest-{table.name}-changelog"
    assert app.group_id == "wired.ingest"


def test_build_app_takes_the_ports_it_is_given(tmp_path):
    ports = Ports(
        producer=KafkaEventProducer("127.0.0.1:9", topic_prefix="wired."),
        gallery_settings=Galleries(),
        store=FilesystemStore(tmp_path / "objects"),
        metrics=Metrics(CollectorRegistry()),
        clock=SystemClock(),
    )
    app = build_app(settings_in(tmp_path), ports)
    assert app.ports is ports
