"""``darkroom topics create|describe``: make the broker match the topic registry."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from darkroom_common.errors import DarkroomError
from darkroom_common.settings import DarkroomSettings, load_settings
from darkroom_common.topics import create_topics, describe_topics, layouts


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``topics create`` and ``topics describe``."""
    parser = subparsers.add_parser("topics", help="create or check the pipeline's Kafka topics")
    sub = parser.add_subparsers(dest="action", required=True)
    for action, helptext in (
        ("create", "create every registry topic that is missing (idempotent)"),
        ("describe", "compare the broker's topics with the registry; exit 1 on any difference"),
    ):
        p = sub.add_parser(action, help=helptext)
        p.add_argument(
            "--bootstrap", help="host:port list (default: settings / KAFKA_BOOTSTRAP_SERVERS)"
        )
        p.add_argument(
            "--prefix", help="topic name prefix (default: DARKROOM_TOPIC_PREFIX or 'darkroom.')"
        )
        p.add_argument("--partitions", type=int, help="partitions per topic (default: settings, 8)")
        p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    overrides = {
        k: v
        for k, v in {
            "kafka_bootstrap_servers": args.bootstrap,
            "topic_prefix": args.prefix,
            "topic_partitions": args.partitions,
        }.items()
        if v is not None
    }
    try:
        settings = load_settings(DarkroomSettings, **overrides)
        wanted = layouts(
            settings.topic_prefix, settings.topic_partitions, settings.topic_replication_factor
        )
        if args.action == "create":
            result = asyncio.run(create_topics(settings.kafka_bootstrap_servers, wanted))
            for name, outcome in result.items():
                print(json.dumps({"topic": name, "outcome": outcome}))
            return 0
        states = asyncio.run(describe_topics(settings.kafka_bootstrap_servers, wanted))
    except DarkroomError as exc:
        print(f"darkroom topics {args.action}: {exc}", file=sys.stderr)
        return 2
    for s in states:
        print(
            json.dumps(
                {"topic": s.name, "ok": s.ok, "partitions": s.partitions, "problems": s.problems}
            )
        )
    return 0 if all(s.ok for s in states) else 1
