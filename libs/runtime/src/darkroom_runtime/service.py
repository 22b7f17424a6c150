"""Run a stage's worker only when its settings, topics and handlers are all in place.

``run_service`` is the whole ``__main__`` of a service: it validates the settings,
sets up logging, builds the worker (``build`` mounts it: a handler missing or extra
is refused there), checks every topic the stage needs against the registry (its
changelogs included, and for a stage with tables the exact partition count its
co-partitioning needs), then runs the worker until SIGTERM or SIGINT, after which it
finishes the events in hand, commits and leaves the group. Each refusal is one clear
sentence on stderr and a distinct exit status.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from typing import TypeVar

from darkroom_common.errors import BrokerUnavailable, ConfigurationError, TopicMisconfigured
from darkroom_common.logging import configure_logging
from darkroom_common.settings import DarkroomSettings, load_settings
from darkroom_common.topics import describe_topics, settings_layouts, verify_topics
from darkroom_runtime.app import StageApp
from darkroom_runtime.mount import MountError
from darkroom_schemas.topics import topics_for_stage

EXIT_CONFIG = 2
EXIT_TOPICS = 3
EXIT_BROKER = 4
EXIT_HANDLERS = 5

S = TypeVar("S", bound=DarkroomSettings)
log = logging.getLogger(__name__)


async def preflight(app: StageApp) -> None:
    """Check the stage's topics on the broker.

    Every topic must have at least the settings' replication factor
    (``DARKROOM_TOPIC_REPLICATION_FACTOR``) and their ``min.insync.replicas``.

    Raises:
        TopicMisconfigured: a topic is missing or differs from the registry or the
            settings (fewer partitions or replicas, other configs), or (for a
            stage with tables) a consumed topic's partition count differs from the
            deployment's, which would break co-partitioning.
        BrokerUnavailable: the cluster cannot be reached.
    """
    settings = app.settings
    wanted = settings_layouts(settings, topics_for_stage(app.stage.name))
    await verify_topics(settings.kafka_bootstrap_servers, wanted, service=app.stage.name)
    if not app.stage.state:
        return
    consumed = {settings.topic(t) for t in (*app.stage.consumes, *app.stage.internal)}
    states = await describe_topics(
        settings.kafka_bootstrap_servers, [w for w in wanted if w.name in consumed]
    )
    if odd := [s for s in states if s.partitions != settings.topic_partitions]:
        details = ", ".join(f"{s.name} has {s.partitions}" for s in odd)
        raise TopicMisconfigured(
            f"{app.stage.name} cannot start: its tables need every consumed topic to have "
            f"exactly {settings.topic_partitions} partitions (DARKROOM_TOPIC_PARTITIONS); "
            f"{details}."
        )


def run_service(stage_name: str, settings_cls: type[S], build: Callable[[S], StageApp]) -> int:
    """Validate, check and run one stage's worker until it is stopped.

    Returns:
        The exit status: 0 after a clean stop, :data:`EXIT_CONFIG`, :data:`EXIT_TOPICS`,
        :data:`EXIT_BROKER` or :data:`EXIT_HANDLERS` on a refusal.
    """
    try:
        settings = load_settings(settings_cls)
    except ConfigurationError as exc:
        print(f"{stage_name}: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(stage_name, level=settings.log_level, json_lines=settings.log_json)
    try:
        return asyncio.run(_main(stage_name, settings, build))
    except KeyboardInterrupt:
        return 0


async def _main(stage_name: str, settings: S, build: Callable[[S], StageApp]) -> int:
    try:
        app = build(settings)
        await preflight(app)
    except MountError as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_HANDLERS
    except TopicMisconfigured as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_TOPICS
    except BrokerUnavailable as exc:
        print(f"{stage_name} cannot start: {exc.message}", file=sys.stderr)
        return EXIT_BROKER
    except ConfigurationError as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_CONFIG
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("starting", extra={"stage": stage_name, "bootstrap": settings.kafka_bootstrap_servers})
    try:
        await app.run(stop)
    except BrokerUnavailable as exc:
        print(f"{stage_name} cannot start: {exc.message}", file=sys.stderr)
        await app.stop()
        return EXIT_BROKER
    except OSError as exc:
        print(f"{stage_name} cannot start: {exc}", file=sys.stderr)
        await app.stop()
        return EXIT_CONFIG
    return 0
