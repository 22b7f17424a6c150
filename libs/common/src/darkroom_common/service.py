"""Start a stage's worker only when its settings, topics and handlers are all in place.

``run_service`` is the whole ``__main__`` of a service: it validates the
settings, sets up logging, checks every topic the stage needs against the
registry, checks that the Faust app has an agent for every topic the stage
consumes, and only then hands over to a Faust worker. Each refusal is one
clear sentence on stderr and a distinct exit status.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

import faust

from darkroom_common.errors import BrokerUnavailable, ConfigurationError, TopicMisconfigured
from darkroom_common.logging import configure_logging
from darkroom_common.settings import DarkroomSettings, load_settings
from darkroom_common.topics import TopicLayout, create_topics, layouts, verify_topics
from darkroom_schemas.topics import TopicSpec, stage, topics_for_stage

EXIT_CONFIG = 2
EXIT_TOPICS = 3
EXIT_BROKER = 4
EXIT_HANDLERS = 5

S = TypeVar("S", bound=DarkroomSettings)
log = logging.getLogger(__name__)


def missing_handlers(app: faust.App, stage_name: str, settings: DarkroomSettings) -> list[str]:
    """Return the topics ``stage_name`` consumes that no agent of ``app`` subscribes to."""
    subscribed: set[str] = set()
    for agent in app.agents.values():
        subscribed.update(getattr(agent.channel, "topics", ()))
    return [
        settings.topic(t) for t in stage(stage_name).consumes if settings.topic(t) not in subscribed
    ]


async def create_changelog_topics(app: faust.App, settings: DarkroomSettings) -> dict[str, str]:
    """Create the changelog topic of every table of ``app`` before the worker starts.

    Faust declares them itself once running, but a worker whose first events
    arrive before its consumer has metadata for a brand-new changelog topic
    fails them with ``PartitionsMismatch``; created here, they exist from the
    first subscription on. Compacted, one partition per source partition.

    Returns:
        ``{topic: "created" | "exists"}``.
    """
    wanted = []
    for table in app.tables.values():
        partitions = table.partitions or settings.topic_partitions
        spec = TopicSpec(
            table.changelog_topic.get_topic_name(),
            key="table key",
            cleanup_policy="compact",
            retention_ms=-1,
        )
        wanted.append(TopicLayout(spec, spec.name, partitions, settings.topic_replication_factor))
    if not wanted:
        return {}
    return await create_topics(settings.kafka_bootstrap_servers, wanted)


def preflight(stage_name: str, settings: DarkroomSettings, app: faust.App) -> None:
    """Check topics and handlers for ``stage_name``.

    Raises:
        TopicMisconfigured: a topic is missing or differs from the registry.
        BrokerUnavailable: the cluster cannot be reached.
        ConfigurationError: a consumed topic has no agent (no handler).
    """
    wanted = layouts(
        settings.topic_prefix,
        settings.topic_partitions,
        settings.topic_replication_factor,
        topics_for_stage(stage_name),
    )
    asyncio.run(verify_topics(settings.kafka_bootstrap_servers, wanted, service=stage_name))
    asyncio.run(create_changelog_topics(app, settings))
    if missing := missing_handlers(app, stage_name, settings):
        raise ConfigurationError(
            f"{stage_name} cannot start: no agent handles {', '.join(missing)}",
            reason_code="no_handler",
        )


def run_service(stage_name: str, settings_cls: type[S], build_app: Callable[[S], faust.App]) -> int:
    """Validate, check and run one stage's Faust worker until it is stopped.

    Returns:
        The exit status: 0 after a clean stop, :data:`EXIT_CONFIG`,
        :data:`EXIT_TOPICS`, :data:`EXIT_BROKER` or :data:`EXIT_HANDLERS` on a refusal.
    """
    try:
        settings = load_settings(settings_cls)
    except ConfigurationError as exc:
        print(f"{stage_name}: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(stage_name, level=settings.log_level, json_lines=settings.log_json)
    try:
        app = build_app(settings)
        preflight(stage_name, settings, app)
    except TopicMisconfigured as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_TOPICS
    except BrokerUnavailable as exc:
        print(f"{stage_name} cannot start: {exc.message}", file=sys.stderr)
        return EXIT_BROKER
    except ConfigurationError as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_HANDLERS if exc.reason_code == "no_handler" else EXIT_CONFIG
    log.info("starting", extra={"stage": stage_name, "bootstrap": settings.kafka_bootstrap_servers})
    worker = faust.Worker(app, loglevel=settings.log_level, override_logging=False)
    worker.execute_from_commandline()
    return 0
