"""``darkroom bridge s3-events FILE|-``: turn S3 ObjectCreated notifications into ``uploaded`` events.

Reads one JSON document (or JSON lines, one document per line) from FILE or
stdin — S3 event notifications, SQS messages or receive batches (SNS-wrapped
too), EventBridge "Object Created" events; see :mod:`darkroom_ingest.s3_events`
for the shapes and the key layout ``originals/<gallery>/<image>/<file>``
(``--prefix`` changes ``originals/``). Each event is produced to
``<DARKROOM_TOPIC_PREFIX>uploaded`` on ``KAFKA_BOOTSTRAP_SERVERS`` with the
event producer (:class:`~darkroom_common.producer.KafkaEventProducer`); ``--dry-run``
only prints them.

Prints one JSON line per record: ``{"ok": true, "image_id", "gallery_id",
"object_key"}`` or ``{"ok": false, "key", "reason", "message"}``. Exit status:
0 when the input was understood (skipped records included), 1 when it was not
JSON or not a notification, 2 when the file is missing, 4 when the broker
cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from darkroom_common.settings import DarkroomSettings
    from darkroom_schemas import UploadedV1


def register(subparsers: Any) -> None:
    """Add the ``bridge`` command group with ``s3-events``."""
    p = subparsers.add_parser("bridge", help="turn external notifications into uploaded events")
    sub = p.add_subparsers(dest="bridge_command", metavar="SOURCE", required=True)
    s3 = sub.add_parser("s3-events", help="S3 ObjectCreated notifications (S3/SQS/SNS/EventBridge)")
    s3.add_argument("source", metavar="FILE|-", help="a JSON file, or - for stdin")
    # default None: darkroom_ingest.s3_events.DEFAULT_PREFIX, read when the command runs
    s3.add_argument("--prefix", default=None, help="key prefix before <gallery>/<image>/")
    s3.add_argument("--profile", default=None, help="variant profile for these uploads")
    s3.add_argument("--dry-run", action="store_true", help="print the events, produce nothing")
    s3.set_defaults(func=run_s3_events)


def _documents(text: str) -> list[Any]:
    try:
        return [json.loads(text)]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def run_s3_events(args: argparse.Namespace) -> int:
    """Parse the notifications and produce their events; see the module docstring."""
    from darkroom_common.errors import BrokerUnavailable
    from darkroom_common.settings import DarkroomSettings
    from darkroom_ingest.s3_events import (
        DEFAULT_PREFIX,
        NotificationError,
        Skipped,
        uploaded_events,
    )
    from darkroom_schemas import UploadedV1

    prefix = DEFAULT_PREFIX if args.prefix is None else args.prefix
    if args.source == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(args.source).read_text("utf-8")
        except OSError as exc:
            print(f"darkroom: cannot read {args.source}: {exc.strerror}", file=sys.stderr)
            return 2
    try:
        results = [
            r
            for doc in _documents(text)
            for r in uploaded_events(doc, prefix=prefix, profile=args.profile)
        ]
    except (json.JSONDecodeError, NotificationError) as exc:
        print(f"darkroom: not an S3 notification: {exc}", file=sys.stderr)
        return 1
    events = [r for r in results if isinstance(r, UploadedV1)]
    if events and not args.dry_run:
        import asyncio

        settings = DarkroomSettings()
        try:
            asyncio.run(_produce(settings, events))
        except BrokerUnavailable as exc:
            print(f"darkroom: {exc.message}", file=sys.stderr)
            return 4
    for r in results:
        if isinstance(r, Skipped):
            line = {"ok": False, "key": r.key, "reason": r.reason, "message": r.message}
        else:
            line = {"ok": True, "image_id": r.image_id, "gallery_id": r.gallery_id,
                    "object_key": r.object_key, "produced": not args.dry_run}  # fmt: skip
        print(json.dumps(line))
    return 0


async def _produce(settings: DarkroomSettings, events: list[UploadedV1]) -> None:
    from darkroom_common.producer import KafkaEventProducer

    async with KafkaEventProducer(
        settings.kafka_bootstrap_servers,
        topic_prefix=settings.topic_prefix,
        allowed=("uploaded",),
        client_id="darkroom-bridge",
    ) as producer:
        for event in events:
            await producer.send("uploaded", event)
