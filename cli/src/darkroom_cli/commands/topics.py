"""``darkroom topics create|describe|graph``: the pipeline's topics, from the topic registry.

``create`` makes the broker hold every registry topic (idempotent), with the
deployment's replication factor (``DARKROOM_TOPIC_REPLICATION_FACTOR`` or
``--replication-factor``) and ``min.insync.replicas``
(``DARKROOM_TOPIC_MIN_INSYNC_REPLICAS``, default one less than the replication
factor, at least 1); with ``--verify`` it then checks them as ``describe`` does.
``describe`` compares the broker's topics with the registry and the settings
(partitions, replication factor, configs including ``min.insync.replicas``) and
prints one JSON line per topic; ``graph`` prints the pipeline graph
the registry declares (:func:`darkroom_schemas.topics.describe`: sources, each stage's
routes and what they may emit, tables, dead-letter topics) for the deployment's
``DARKROOM_TOPIC_PREFIX`` and ``DARKROOM_TOPIC_PARTITIONS``, without a broker. The
README's topic flow is this output for the defaults.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``topics create``, ``topics describe`` and ``topics graph``."""
    parser = subparsers.add_parser("topics", help="create or check the pipeline's Kafka topics")
    sub = parser.add_subparsers(dest="action", required=True)
    for action, helptext in (
        ("create", "create every registry topic that is missing (idempotent)"),
        ("describe", "compare the broker's topics with the registry; exit 1 on any difference"),
        ("graph", "print the pipeline graph the registry declares (no broker needed)"),
    ):
        p = sub.add_parser(action, help=helptext)
        if action != "graph":
            p.add_argument(
                "--bootstrap", help="host:port list (default: settings / KAFKA_BOOTSTRAP_SERVERS)"
            )
        p.add_argument(
            "--prefix", help="topic name prefix (default: DARKROOM_TOPIC_PREFIX or 'darkroom.')"
        )
        p.add_argument("--partitions", type=int, help="partitions per topic (default: settings, 8)")
        if action != "graph":
            p.add_argument(
                "--replication-factor",
                type=int,
                help="replicas per partition (default: DARKROOM_TOPIC_REPLICATION_FACTOR, 1)",
            )
        if action == "create":
            p.add_argument(
                "--verify",
                action="store_true",
                help="then describe the topics and exit 1 if any differs (e.g. an existing "
                "topic with fewer replicas)",
            )
        p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from darkroom_common.errors import DarkroomError
    from darkroom_common.settings import DarkroomSettings, load_settings
    from darkroom_common.topics import create_topics, describe_topics, settings_layouts

    overrides = {
        k: v
        for k, v in {
            "kafka_bootstrap_servers": getattr(args, "bootstrap", None),
            "topic_prefix": args.prefix,
            "topic_partitions": args.partitions,
            "topic_replication_factor": getattr(args, "replication_factor", None),
        }.items()
        if v is not None
    }
    try:
        settings = load_settings(DarkroomSettings, **overrides)
        if args.action == "graph":
            from darkroom_schemas.topics import describe

            print(describe(settings.topic_prefix, settings.topic_partitions), end="")
            return 0
        wanted = settings_layouts(settings)
        if args.action == "create":
            result = asyncio.run(create_topics(settings.kafka_bootstrap_servers, wanted))
            for name, outcome in result.items():
                print(json.dumps({"topic": name, "outcome": outcome}))
            if not args.verify:
                return 0
            bad = [
                s
                for s in asyncio.run(describe_topics(settings.kafka_bootstrap_servers, wanted))
                if not s.ok
            ]
            for s in bad:
                print(f"darkroom topics create: {s.name}: {', '.join(s.problems)}", file=sys.stderr)
            return 1 if bad else 0
        states = asyncio.run(describe_topics(settings.kafka_bootstrap_servers, wanted))
    except DarkroomError as exc:
        print(f"darkroom topics {args.action}: {exc}", file=sys.stderr)
        return 2
    for s in states:
        print(
            json.dumps(
                {
                    "topic": s.name,
                    "ok": s.ok,
                    "partitions": s.partitions,
                    "replication_factor": s.replication_factor,
                    "min_insync_replicas": s.min_insync_replicas,
                    "problems": s.problems,
                }
            )
        )
    return 0 if all(s.ok for s in states) else 1
