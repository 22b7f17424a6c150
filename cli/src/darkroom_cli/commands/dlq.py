"""``darkroom dlq list|show|requeue``: inspect dead letters and send them back.

Every stage sends what it gave up on to ``<stage>.dlq`` as a
:class:`DeadLetterV1` carrying the original payload and where it came from.
``list`` prints one JSON line per dead letter (filter by ``--stage``,
``--reason``, ``--since``); ``show`` prints one in full (its payload decoded
when it is an event); ``requeue`` produces the original payloads back to their
source topics with their original keys, so the stage processes them again
(every stage is idempotent, so a requeue of something already fixed is harmless).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from darkroom_cli.commands import LazyChoices, iso_timestamp

if TYPE_CHECKING:
    from darkroom_schemas import DeadLetterV1


def _stage_names() -> list[str]:
    from darkroom_schemas.topics import STAGES

    return [s.name for s in STAGES]


def register(subparsers: Any) -> None:
    """Add ``dlq list``, ``dlq show`` and ``dlq requeue``."""
    parser = subparsers.add_parser("dlq", help="list, show or requeue dead letters", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="action", required=True)
    for action, helptext in (
        ("list", "one JSON line per dead letter"),
        ("show", "one dead letter in full: --id EVENT_ID"),
        ("requeue", "send the matching dead letters' payloads back to their source topics"),
    ):
        p = sub.add_parser(action, help=helptext)
        p.add_argument(
            "--bootstrap", help="host:port list (default: settings / KAFKA_BOOTSTRAP_SERVERS)"
        )
        p.add_argument(
            "--prefix", help="topic prefix (default: DARKROOM_TOPIC_PREFIX or 'darkroom.')"
        )
        stage = p.add_argument("--stage", help="only this stage's dead letters")
        # After add_argument, which formats the argument once (reading its choices).
        stage.choices = LazyChoices(_stage_names)
        p.add_argument("--reason", help="only this reason code")
        p.add_argument(
            "--since",
            type=iso_timestamp,
            help="only dead letters at or after this ISO 8601 time (UTC if no offset)",
        )
        if action == "show":
            p.add_argument("--id", required=True, help="the dead letter's event_id")
        p.set_defaults(func=_run)


@dataclass(frozen=True, slots=True)
class Letter:
    """A dead letter and where it sits in its dead-letter topic."""

    topic: str
    partition: int
    offset: int
    envelope: DeadLetterV1

    def summary(self) -> dict[str, Any]:
        """The JSON line ``list`` prints."""
        e = self.envelope
        return {
            "id": e.event_id, "stage": e.stage, "reason": e.reason_code, "error_class": e.error_class,
            "message": e.error_message, "attempts": e.attempts, "retriable": e.retriable,
            "occurred_at": e.occurred_at.isoformat(), "job_id": e.job_id, "gallery_id": e.gallery_id,
            "image_id": e.image_id, "source": f"{e.source_topic}[{e.source_partition}]@{e.source_offset}",
            "dlq": f"{self.topic}[{self.partition}]@{self.offset}",
        }  # fmt: skip


async def read_letters(
    bootstrap: str,
    prefix: str,
    *,
    stage: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
) -> list[Letter]:
    """Return the dead letters in the deployment's DLQ topics that match the filters, oldest first per partition.

    ``since`` seeks by timestamp (Kafka's offsets-for-times), so old partitions are not read.
    """
    from darkroom_common.topics import read_to_end
    from darkroom_schemas import DeadLetterV1, WireFormatError, decode
    from darkroom_schemas.topics import STAGES

    topics = [f"{prefix}{s.dead_letter}" for s in STAGES if stage in (None, s.name)]
    found: list[Letter] = []
    async for r in read_to_end(bootstrap, topics, since=since):
        try:
            envelope = decode(r.value or b"")
        except WireFormatError:
            continue
        if (
            isinstance(envelope, DeadLetterV1)
            and reason in (None, envelope.reason_code)
            and (since is None or envelope.occurred_at >= since)
        ):
            found.append(Letter(r.topic, r.partition, r.offset, envelope))
    return found


async def requeue(bootstrap: str, letters: list[Letter]) -> int:
    """Produce each letter's original payload to its source topic with its original key; return the count."""
    from darkroom_common.producer import KafkaEventProducer

    async with KafkaEventProducer(bootstrap, client_id="darkroom-dlq") as producer:
        for letter in letters:
            e = letter.envelope
            await (await producer.send_raw(e.source_topic, e.payload, key=e.key))
    return len(letters)


def _full(letter: Letter) -> dict[str, Any]:
    from darkroom_schemas import WireFormatError, decode

    out = letter.summary()
    payload = letter.envelope.payload
    try:
        out["payload"] = decode(payload).model_dump(mode="json")
    except WireFormatError:
        out["payload_base64"] = base64.b64encode(payload).decode()
    return out


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from darkroom_common.errors import DarkroomError
    from darkroom_common.settings import DarkroomSettings, load_settings

    overrides = {
        k: v
        for k, v in {"kafka_bootstrap_servers": args.bootstrap, "topic_prefix": args.prefix}.items()
        if v
    }
    try:
        settings = load_settings(DarkroomSettings, **overrides)

        letters = asyncio.run(
            read_letters(
                settings.kafka_bootstrap_servers,
                settings.topic_prefix,
                stage=args.stage,
                reason=args.reason,
                since=args.since,
            )
        )
        if args.action == "list":
            for letter in letters:
                print(json.dumps(letter.summary()))
            return 0
        if args.action == "show":
            match = [x for x in letters if x.envelope.event_id == args.id]
            if not match:
                print(f"darkroom dlq show: no dead letter with id {args.id}", file=sys.stderr)
                return 1
            print(json.dumps(_full(match[0]), indent=2))
            return 0
        count = asyncio.run(requeue(settings.kafka_bootstrap_servers, letters))
        print(json.dumps({"requeued": count}))
        return 0
    except DarkroomError as exc:
        print(f"darkroom dlq {args.action}: {exc.message}", file=sys.stderr)
        return 2
