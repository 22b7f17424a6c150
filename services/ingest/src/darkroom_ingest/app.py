"""The ingest worker: consumer group ``<topic prefix>ingest``, its tables in memory.

The tables are rebuilt from their changelogs (``<prefix>ingest-<table>-changelog``,
the names the Faust release used) each time a worker is assigned a partition. Keys
and values are JSON, Faust's encoding for tables, so the state it wrote is read as is.
"""

from __future__ import annotations

from darkroom_common.ports import Ports
from darkroom_ingest.gate import GateState, TableGalleryIndex
from darkroom_ingest.routes import BY_GALLERY, routes
from darkroom_ingest.settings import IngestSettings
from darkroom_runtime import StageApp, Table, mount, ports_for


def build_app(settings: IngestSettings, ports: Ports | None = None) -> StageApp:
    """Return the ingest worker with its tables declared and its routes mounted.

    Args:
        ports: default :func:`~darkroom_runtime.ports_for` the settings (built once here).

    Raises:
        MountError: the routes or tables disagree with the registry.
    """
    ports = ports or ports_for(
        "ingest", settings, gallery_settings_wait_s=settings.gallery_settings_wait_s
    )
    app = StageApp("ingest", settings)

    def table(name: str) -> Table:
        return app.table(name, lane=BY_GALLERY, key_codec="json", value_codec="json")

    index = TableGalleryIndex(
        table("ingest-content"), table("ingest-gallery-counts"), table("ingest-image-content")
    )
    state = GateState(
        held=table("ingest-held"),
        queued=table("ingest-queued"),
        active=table("ingest-active"),
        verdicts=table("ingest-verdicts"),
    )
    return mount(app, "ingest", routes(settings, ports, index, state), ports)
