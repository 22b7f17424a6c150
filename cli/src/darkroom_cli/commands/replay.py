"""``darkroom replay`` and ``darkroom reset-offsets``: reprocess from the topics' history.

``replay --topic validated`` reads accepted images from ``validated`` (from a
time or an offset, up to ``--to-time`` or the current end, optionally one
gallery) and re-emits the last plannable event of each image into the replay
lane (``replay.validated``) as a new job of that image (job id
``<image_id>.replay-<stamp>``), optionally with another ``--profile``. The
variants planner reuses every variant whose spec hash is unchanged (the object
under its deterministic key) and renders only the others, in a lane that yields
to live uploads; the catalog replaces the image's job when the new one
completes, so the gallery never holds the image twice.

``replay --topic uploaded`` re-emits uploads (``source="replay"``, a new job per
image) to ``uploaded``: validation, development and rendering run again through
the live lane.

``reset-offsets --group G --to-time TS`` moves a *stopped* consumer group's
committed offsets to the first record at or after TS on every partition it
committed (Kafka's offsets-for-times), so it reprocesses from there when started.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from darkroom_cli.commands import iso_timestamp

if TYPE_CHECKING:
    from darkroom_common.settings import DarkroomSettings
    from darkroom_schemas import UploadedV1, ValidatedV1


def register(subparsers: Any) -> None:
    """Add ``replay`` and ``reset-offsets``."""
    p = subparsers.add_parser("replay", help="re-emit events to reprocess images", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument(
        "--topic", choices=["validated", "uploaded"], required=True, help="registry topic to replay"
    )
    start = p.add_mutually_exclusive_group(required=True)
    start.add_argument("--from-time", type=iso_timestamp, help="ISO 8601 time (UTC if no offset)")
    start.add_argument("--from-offset", type=int, help="offset on every partition")
    p.add_argument(
        "--to-time",
        type=iso_timestamp,
        help="stop at records after this time (default: the current end)",
    )
    p.add_argument("--gallery", help="only this gallery")
    p.add_argument(
        "--profile", help="render with this profile instead of the events' (validated only)"
    )
    p.add_argument(
        "--rate",
        type=float,
        default=20.0,
        help="images per second re-emitted (default 20; 0 for no cap): the backfill's pace",
    )
    p.add_argument(
        "--bootstrap", help="host:port list (default: settings / KAFKA_BOOTSTRAP_SERVERS)"
    )
    p.add_argument("--prefix", help="topic prefix (default: DARKROOM_TOPIC_PREFIX or 'darkroom.')")
    p.set_defaults(func=_replay)

    r = subparsers.add_parser(
        "reset-offsets", help="move a stopped consumer group's offsets to a time"
    )
    r.add_argument("--group", required=True, help="consumer group, e.g. darkroom.variants")
    r.add_argument(
        "--to-time", type=iso_timestamp, required=True, help="ISO 8601 time (UTC if no offset)"
    )
    r.add_argument(
        "--bootstrap", help="host:port list (default: settings / KAFKA_BOOTSTRAP_SERVERS)"
    )
    r.set_defaults(func=_reset)


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


async def read_range(
    bootstrap: str,
    topic: str,
    *,
    from_time: datetime | None,
    from_offset: int | None,
    to_time: datetime | None,
) -> list[Any]:
    """Return the decoded events of ``topic`` in the range, in offset order per partition."""
    import asyncio
    import contextlib

    from aiokafka import AIOKafkaConsumer, TopicPartition

    from darkroom_common.topics import admin_client
    from darkroom_schemas import WireFormatError, decode

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    events: list[Any] = []
    try:
        async with admin_client(bootstrap) as admin:
            [meta] = await admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in meta["partitions"]]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        if from_time is not None:
            starts = await consumer.offsets_for_times({tp: _ms(from_time) for tp in partitions})
            for tp in partitions:
                at = starts.get(tp)
                consumer.seek(tp, at.offset if at is not None else ends[tp])
        else:
            for tp, first in (await consumer.beginning_offsets(partitions)).items():
                consumer.seek(tp, max(first, from_offset or 0))
        remaining = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        while remaining:
            for tp, records in (await consumer.getmany(*remaining, timeout_ms=1000)).items():
                for r in records:
                    if r.offset >= ends[tp] or (to_time is not None and r.timestamp > _ms(to_time)):
                        remaining.discard(tp)
                        break
                    with contextlib.suppress(WireFormatError):
                        events.append(decode(r.value or b""))
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    finally:
        with contextlib.suppress(asyncio.CancelledError):  # see darkroom_cli.commands.dlq
            await consumer.stop()
    return events


def replay_events(
    events: list[Any], topic: str, *, gallery: str | None, profile: str | None, stamp: str
) -> list[UploadedV1 | ValidatedV1]:
    """Choose what to re-emit: the last matching event per image, as a new job of that image."""
    from darkroom_schemas import UploadedV1, ValidatedV1

    last: dict[str, UploadedV1 | ValidatedV1] = {}
    for e in events:
        if gallery is not None and getattr(e, "gallery_id", None) != gallery:
            continue
        if topic == "validated" and isinstance(e, ValidatedV1):
            if e.accepted and (not e.is_raw or e.derived_from is not None):
                last[e.image_id] = e
        elif topic == "uploaded" and isinstance(e, UploadedV1):
            last[e.image_id] = e
    out: list[UploadedV1 | ValidatedV1] = []
    for e in last.values():
        update: dict[str, Any] = {"job_id": f"{e.image_id}.replay-{stamp}", "attempt": 1}
        fresh = type(e).model_validate(
            {**e.model_dump(exclude={"event_id", "occurred_at"}), **update}
        )
        if isinstance(fresh, UploadedV1):
            fresh = fresh.model_copy(update={"source": "replay"})
        elif profile is not None:
            fresh = fresh.model_copy(update={"profile": profile})
        out.append(fresh)
    return out


async def produce(
    bootstrap: str, topic: str, events: list[UploadedV1 | ValidatedV1], *, rate: float | None = None
) -> None:
    """Produce ``events`` to ``topic`` keyed by image_id (idempotent, acks=all).

    ``rate`` caps the pace in events per second (None: as fast as the broker
    acknowledges), so a backfill trickles in behind live uploads instead of
    flooding every stage's partitions at once.
    """
    import asyncio

    from darkroom_common.producer import KafkaEventProducer
    from darkroom_schemas import encode

    loop = asyncio.get_running_loop()
    started = loop.time()
    async with KafkaEventProducer(bootstrap, client_id="darkroom-replay") as producer:
        for i, e in enumerate(events):
            if rate:
                await asyncio.sleep(max(0.0, started + i / rate - loop.time()))
            await (await producer.send_raw(topic, encode(e), key=e.image_id.encode()))


def _settings(args: argparse.Namespace) -> DarkroomSettings:
    from darkroom_common.settings import DarkroomSettings, load_settings

    overrides = {
        "kafka_bootstrap_servers": args.bootstrap,
        "topic_prefix": getattr(args, "prefix", None),
    }
    return load_settings(DarkroomSettings, **{k: v for k, v in overrides.items() if v})


def _replay(args: argparse.Namespace) -> int:
    import asyncio

    from darkroom_common.errors import DarkroomError

    try:
        settings = _settings(args)
        events = asyncio.run(
            read_range(settings.kafka_bootstrap_servers, settings.topic(args.topic),
                       from_time=args.from_time, from_offset=args.from_offset, to_time=args.to_time)
        )  # fmt: skip
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        chosen = replay_events(
            events, args.topic, gallery=args.gallery, profile=args.profile, stamp=stamp
        )
        lane = settings.topic("replay.validated" if args.topic == "validated" else "uploaded")
        asyncio.run(produce(settings.kafka_bootstrap_servers, lane, chosen, rate=args.rate or None))
    except DarkroomError as exc:
        print(f"darkroom replay: {exc.message}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "read": len(events),
                "replayed": len(chosen),
                "to": lane,
                "job_suffix": f".replay-{stamp}",
            }
        )
    )
    return 0


async def reset_offsets(bootstrap: str, group: str, to_time: datetime) -> dict[str, int]:
    """Move stopped ``group``'s committed offsets to ``to_time``; return ``{"topic[p]": offset}``.

    Raises:
        DarkroomError: the group has members (it must be stopped) or committed nothing.
    """
    import asyncio
    import contextlib

    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import OffsetAndMetadata

    from darkroom_common.errors import DarkroomError
    from darkroom_common.topics import admin_client

    async with admin_client(bootstrap) as admin:
        [response] = await admin.describe_consumer_groups([group])
        [description] = response.to_object()["groups"]
        if description["members"]:
            raise DarkroomError(
                f"consumer group {group} has {len(description['members'])} active members; stop them first"
            )
        committed = await admin.list_consumer_group_offsets(group)
    if not committed:
        raise DarkroomError(f"consumer group {group} has committed no offsets")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = list(committed)
        consumer.assign(partitions)
        found = await consumer.offsets_for_times({tp: _ms(to_time) for tp in partitions})
        ends = await consumer.end_offsets(partitions)
        target = {
            tp: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in partitions
        }
        await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in target.items()})
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()
    return {f"{tp.topic}[{tp.partition}]": o for tp, o in sorted(target.items())}


def _reset(args: argparse.Namespace) -> int:
    import asyncio

    from darkroom_common.errors import DarkroomError

    try:
        settings = _settings(args)
        moved = asyncio.run(
            reset_offsets(settings.kafka_bootstrap_servers, args.group, args.to_time)
        )
    except DarkroomError as exc:
        print(f"darkroom reset-offsets: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps({"group": args.group, "offsets": moved}))
    return 0
