"""The Faust app factory every service uses.

Values are passed explicitly from the service's settings. Faust also reads its
own unprefixed environment variables (``BROKER_URL``, ``APP_DATADIR``,
``WEB_PORT``…) and lets them override the arguments; the factory hands Faust an
empty environment so only Darkroom's settings apply, and logs a warning naming
any such variable it finds, since someone expected it to do something.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from typing import Any

import faust
from faust import web
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import REGISTRY, generate_latest

from darkroom_common.codec import CODEC_NAME, register_codec
from darkroom_common.lag import attach_lag_exporter
from darkroom_common.settings import DarkroomSettings

FAUST_ENV_VARS = (
    "BROKER_URL",
    "BROKER",
    "APP_DATADIR",
    "APP_TABLEDIR",
    "APP_ENV_PREFIX",
    "STORE",
    "WEB_PORT",
    "WEB_HOST",
    "WEB_BIND",
    "BROKER_CREDENTIALS",
    "TOPIC_PARTITIONS",
)
"""Faust's own environment variables that would silently override our settings."""

log = logging.getLogger(__name__)


def ignored_faust_env(environ: Mapping[str, str] = os.environ) -> list[str]:
    """Return Faust's unprefixed environment variables present in ``environ`` (sorted).

    They are ignored (Faust is given an empty environment); use the DARKROOM_…
    settings instead.
    """
    return sorted(v for v in FAUST_ENV_VARS if v in environ)


def broker_urls(bootstrap: str) -> list[str]:
    """Turn ``"h1:9092,h2:9092"`` into Faust's ``["kafka://h1:9092", "kafka://h2:9092"]``."""
    return [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()]


def create_app(
    app_id: str,
    settings: DarkroomSettings,
    *,
    store: str = "memory://",
    **overrides: Any,
) -> faust.App:
    """Return a :class:`faust.App` configured from ``settings`` only.

    Args:
        app_id: the Faust app id, which is also the Kafka consumer group id.
        settings: the service's validated settings.
        store: table store URL: ``"memory://"`` or ``"rocksdb://"`` (rocksdict).
        **overrides: further :class:`faust.Settings` values.

    Faust's own environment variables are ignored, with a warning (see
    :func:`ignored_faust_env`). Faust's built-in web pages (``/table``, ``/router``, the
    statistics and graph pages) are off: they would answer without an API key. The web
    server serves ``/metrics``, the views a service adds, and Faust's constant ``/`` index.
    """
    if ignored := ignored_faust_env():
        log.warning(
            "ignoring Faust environment variable(s) %s; use the DARKROOM_… settings "
            "(KAFKA_BOOTSTRAP_SERVERS, DARKROOM_DATA_DIR, DARKROOM_WEB_PORT…) instead",
            ", ".join(ignored),
        )
    register_codec()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "broker": broker_urls(settings.kafka_bootstrap_servers),
        "store": store,
        "datadir": str(settings.data_dir / app_id),
        "value_serializer": CODEC_NAME,
        "key_serializer": "raw",
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication_factor,
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "web_port": settings.web_port,
        "web_host": settings.web_host,
        "web_bind": settings.web_host,
        "web_in_thread": False,
        # Faust's built-in pages answer without authentication: /table/{name}/{key}/ serves
        # table contents (the catalog's jobs), /router/ the cluster's topology, the debug
        # pages sensor statistics. table_route forwards to a view's own path, not /router/.
        "web_tables_enabled": False,
        "web_router_enabled": False,
        "web_stats_enabled": False,
        "web_graph_enabled": False,
        "broker_client_id": app_id,
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": settings.session_timeout_s / 4,
        "autodiscover": False,
        "env": {},
    }
    options.update(overrides)
    app = faust.App(app_id, **options)
    attach_metrics(app)
    return app


@functools.cache
def _faust_metrics() -> FaustMetrics:
    return FaustMetrics.create(REGISTRY, "darkroom_faust")


def attach_metrics(app: faust.App) -> None:
    """Serve ``/metrics`` on the worker's web server and feed Faust's own sensor into it.

    The page exposes the process registry: the ``darkroom_*`` families of
    :mod:`darkroom_common.metrics` and Faust's (``darkroom_faust_*``: messages,
    commits and offsets per partition, rebalances). Faust's families are
    registered once per process, however many apps a process builds.
    """
    app.monitor = PrometheusMonitor(metrics=_faust_metrics())
    # darkroom_consumer_lag{group,topic,partition}: the group's lag, polled from the broker.
    attach_lag_exporter(app)

    @app.page("/metrics")
    async def metrics(self: web.View, request: web.Request) -> web.Response:
        # aiohttp refuses a charset inside content_type; text() sets it separately.
        return self.text(
            generate_latest(REGISTRY).decode(), content_type="text/plain; version=0.0.4"
        )
