"""The catalog worker: consumer group ``<topic prefix>catalog``, tables in RocksDB, the HTTP API.

The group id carries the deployment's topic prefix, and so do the tables' changelogs
(``<prefix>catalog-jobs-changelog``, ``<prefix>catalog-galleries-changelog``): two
deployments, or two test runs, on one cluster never share state.
"""

from __future__ import annotations

from darkroom_catalog.api import CatalogApi
from darkroom_catalog.metrics import REFRESH_S, JobGauges
from darkroom_catalog.reconciler import Reconciler
from darkroom_catalog.routes import Catalog
from darkroom_catalog.settings import CatalogSettings
from darkroom_common.ports import Ports
from darkroom_runtime import StageApp, mount, ports_for
from darkroom_runtime.tables import StoreKind


def build_app(
    settings: CatalogSettings,
    ports: Ports | None = None,
    *,
    store: StoreKind = "rocksdb",
    api: bool = True,
) -> StageApp:
    """Return the catalog worker with its tables, routes, reconciler and (with ``api``) HTTP API.

    Args:
        ports: default :func:`~darkroom_runtime.ports_for` the settings.
        store: where the tables live: ``rocksdb`` (kept across restarts) or ``memory``.

    Raises:
        ConfigurationError: the API keys file is unreadable or invalid.
        MountError: the routes disagree with the registry.
    """
    ports = ports or ports_for("catalog", settings)
    app = StageApp("catalog", settings, store=store)
    catalog = Catalog(
        app, ports.clock, JobGauges.for_registry(ports.metrics.registry), ports.metrics
    )
    app.every(REFRESH_S, catalog.refresh_gauges)
    reconciler = Reconciler(app, catalog, settings, ports.metrics, ports.clock)

    async def reconcile() -> None:
        await reconciler.run()

    app.every(settings.reconcile_interval_s, reconcile)
    if api:
        CatalogApi(app, catalog, ports, settings)
    return mount(app, "catalog", catalog.routes(), ports)
