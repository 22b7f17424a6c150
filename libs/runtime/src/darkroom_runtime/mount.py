"""``mount``: build a stage's consumers from the registry, or refuse to start.

::

    app = StageApp("variants", settings)
    ports = ports_for("variants", settings)
    mount(app, "variants", {"validated": Route.each(plan), ...}, ports)

The registry (:data:`darkroom_schemas.topics.STAGES`) says which topics a stage
consumes and what each route may produce; the stage hands in one handler per
consumed topic. ``mount`` refuses, with :class:`MountError` (exit status 5 from
``run_service``), a missing or extra handler, a route that declares an emit outside
the stage's ``produces``, a table the registry does not list (or a listed one not
declared), a table written from a lane no route runs in, and a batched route that
shares its lane. At run time an event sent to a topic its route does not declare is
dead-lettered as ``undeclared_emit``, never sent.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry

from darkroom_common.errors import ConfigurationError
from darkroom_common.gallery_settings import GallerySettingsCache
from darkroom_common.metrics import Metrics
from darkroom_common.ports import Ports, SystemClock
from darkroom_common.producer import KafkaEventProducer
from darkroom_common.settings import DarkroomSettings
from darkroom_common.storage import ObjectStore, open_store
from darkroom_runtime.app import StageApp
from darkroom_runtime.lanes import Bound, Lane
from darkroom_runtime.routes import Route
from darkroom_runtime.runner import RecordRunner
from darkroom_schemas.topics import Stage
from darkroom_schemas.topics import stage as registry_stage


class MountError(ConfigurationError):
    """A stage's handlers, tables or lanes disagree with the registry; it must not start."""

    default_reason = "no_handler"


def ports_for(
    stage_name: str,
    settings: DarkroomSettings,
    *,
    metrics: Metrics | None = None,
    store: ObjectStore | None = None,
    gallery_settings_wait_s: float = 30.0,
    registry: CollectorRegistry | None = None,
) -> Ports:
    """Build a stage's ports once: its producer (limited to what the stage produces), the
    gallery settings it follows, the object store, the metrics and the clock.

    Args:
        metrics: default the process registry's families (``registry`` when given).
        store: default ``open_store(settings.storage)``.
        gallery_settings_wait_s: how long a handler waits for the settings topic.
    """
    spec = registry_stage(stage_name)
    producer = KafkaEventProducer(
        settings.kafka_bootstrap_servers,
        topic_prefix=settings.topic_prefix,
        allowed=(*spec.produces, *spec.internal),
        client_id=settings.topic(stage_name),
    )
    return Ports(
        producer=producer,
        gallery_settings=GallerySettingsCache(
            settings.kafka_bootstrap_servers,
            settings.topic("gallery-settings"),
            wait_s=gallery_settings_wait_s,
        ),
        store=store if store is not None else open_store(settings.storage),
        metrics=metrics if metrics is not None else Metrics.of(registry),
        clock=SystemClock(),
    )


def check(stage: Stage, handlers: Mapping[str, Route], tables: Mapping[str, str]) -> list[str]:
    """Return every way ``handlers`` and ``tables`` (name → writer lane) disagree with ``stage``."""
    problems = []
    if missing := [t for t in stage.consumes if t not in handlers]:
        problems.append(f"no handler for {', '.join(missing)}")
    if extra := [t for t in handlers if t not in stage.consumes]:
        problems.append(f"handlers for topics it does not consume: {', '.join(extra)}")
    allowed = {*stage.produces, *stage.internal}
    for declared in stage.routes:
        if outside := [t for t in declared.emits if t not in allowed]:
            problems.append(
                f"route {declared.topic} emits {', '.join(outside)}, "
                f"which {stage.name} does not produce"
            )
    if unknown := sorted(set(tables) - set(stage.state)):
        problems.append(f"tables the registry does not list: {', '.join(unknown)}")
    if undeclared := sorted(set(stage.state) - set(tables)):
        problems.append(f"registry tables not declared: {', '.join(undeclared)}")
    lanes: dict[str, list[str]] = {}
    for topic, route in handlers.items():
        lanes.setdefault(route.lane or topic, []).append(topic)
    for name, lane in tables.items():
        if lane not in lanes:
            problems.append(f"table {name} is written from lane {lane!r}, which no route runs in")
    for name, topics in lanes.items():
        if len(topics) > 1 and any(handlers[t].batching is not None for t in topics):
            problems.append(f"lane {name}: a batched route must be alone in its lane")
    for topic, route in handlers.items():
        if (route.handle is None) == (route.prepare is None):
            problems.append(f"route {topic}: give exactly one of a handler or a batch preparer")
    return problems


def mount(
    app: StageApp, stage: str | Stage, handlers: Mapping[str, Route], ports: Ports
) -> StageApp:
    """Build ``app``'s lanes from the registry and ``handlers``; attach ``ports``.

    Args:
        app: the worker (tables already declared with :meth:`StageApp.table`).
        stage: the registry stage (or its name); must be ``app``'s.
        handlers: registry topic name → its :class:`Route`.
        ports: built by :func:`ports_for` (its producer must be a ``KafkaEventProducer``).

    Raises:
        MountError: one sentence per disagreement with the registry.
    """
    spec = registry_stage(stage) if isinstance(stage, str) else stage
    if spec.name != app.stage.name:
        raise MountError(f"cannot mount stage {spec.name} on the {app.stage.name} worker")
    problems = check(spec, handlers, {name: t.lane for name, t in app.tables.items()})
    if not isinstance(ports.producer, KafkaEventProducer):
        problems.append("the ports' producer must be a KafkaEventProducer")
    if problems:
        raise MountError(f"{spec.name} cannot start: " + "; ".join(problems) + ".")
    grouped: dict[str, dict[str, Bound]] = {}
    for declared in spec.routes:
        route = handlers[declared.topic]
        name = route.lane or declared.topic
        grouped.setdefault(name, {})[app.settings.topic(declared.topic)] = Bound(route, declared)
    lanes = []
    for name, routes in grouped.items():
        batching = next(iter(routes.values())).route.batching
        high_water = max(100, batching.max_records * 4) if batching else 500
        lanes.append(Lane(name, routes, app, high_water=high_water))
    assert isinstance(ports.producer, KafkaEventProducer)  # checked above
    runner = RecordRunner(spec, app.settings, ports.producer, ports.metrics)
    settings_port = ports.gallery_settings
    if isinstance(settings_port, GallerySettingsCache):
        app.service(settings_port.start, settings_port.stop)
    app.attach(lanes, ports, runner)
    return app
