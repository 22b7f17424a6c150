"""The catalog Faust app; its id (the consumer group) is ``<topic prefix>catalog``.

The id carries the deployment's topic prefix because Faust names its internal
topics after it (``<id>-jobs-changelog``, ``<id>-galleries-changelog``): two
deployments, or two test runs, on one cluster must not share table state.
"""

from __future__ import annotations

import faust

from darkroom_catalog.agents import Catalog
from darkroom_catalog.api import CatalogApi
from darkroom_catalog.settings import CatalogSettings
from darkroom_common.faust_app import create_app


def app_id(settings: CatalogSettings) -> str:
    """Return the Faust app id and consumer group, e.g. ``darkroom.catalog``."""
    return f"{settings.topic_prefix}catalog"


def build_catalog(
    settings: CatalogSettings, *, store: str = "rocksdb://", api: bool = True
) -> Catalog:
    """Return the catalog stage (app, tables, agents, read helpers) for ``settings``.

    ``store`` is the table store URL: RocksDB (rocksdict) by default. With
    ``api`` the HTTP API (:class:`~darkroom_catalog.api.CatalogApi`) is
    attached to the app's web server.

    Raises:
        ConfigurationError: the API keys file is unreadable or invalid.
    """
    app = create_app(app_id(settings), settings, store=store)
    catalog = Catalog(app, settings)
    if api:
        CatalogApi(catalog)
    return catalog


def build_app(settings: CatalogSettings) -> faust.App:
    """Return the catalog app with its tables and agents attached."""
    return build_catalog(settings).app
