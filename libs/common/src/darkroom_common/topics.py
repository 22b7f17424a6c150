"""Create and verify the registry's topics on a real cluster (aiokafka's admin client).

``create_topics`` is idempotent: a topic that exists is left alone and reported.
``verify_topics`` is what a service calls before it starts: a topic it needs
that is missing, or that has fewer partitions, fewer replicas (replication
factor) or other configs than the registry and the settings say, stops the
service with :class:`TopicMisconfigured`.

Replication comes from the deployment, not the registry: every topic gets the
settings' ``topic_replication_factor`` and declares ``min.insync.replicas`` =
``topic_min_insync_replicas`` or, unset, ``max(1, replication factor - 1)``
(3 replicas, 2 in sync: an ``acks=all`` write survives the loss of one broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, KafkaError, for_code
from aiokafka.protocol.metadata import MetadataRequest

from darkroom_common.errors import BrokerUnavailable, ConfigurationError, TopicMisconfigured
from darkroom_schemas.topics import TOPICS, TopicSpec

if TYPE_CHECKING:
    from darkroom_common.settings import DarkroomSettings

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36


def default_min_insync_replicas(replication_factor: int) -> int:
    """``max(1, replication_factor - 1)``: the ``min.insync.replicas`` a topic gets by default."""
    return max(1, replication_factor - 1)


@dataclass(frozen=True, slots=True)
class TopicLayout:
    """How the registry wants one topic on the broker, with a deployment's prefix and defaults.

    Attributes:
        spec: the registry entry.
        name: the broker-side name (prefix included).
        partitions: partition count.
        replication_factor: replicas of each partition.
        min_insync_replicas: the topic's ``min.insync.replicas``; ``None`` means
            :func:`default_min_insync_replicas` of ``replication_factor``.

    Raises:
        ConfigurationError: ``replication_factor`` below 1, or ``min_insync_replicas``
            outside 1..``replication_factor`` (``acks=all`` writes could never succeed).
    """

    spec: TopicSpec
    name: str
    partitions: int
    replication_factor: int
    min_insync_replicas: int | None = None

    def __post_init__(self) -> None:
        if self.replication_factor < 1:
            raise ConfigurationError(
                f"{self.name}: replication factor {self.replication_factor} is below 1"
            )
        if not 1 <= self.min_isr <= self.replication_factor:
            raise ConfigurationError(
                f"{self.name}: min.insync.replicas {self.min_isr} is outside 1.."
                f"{self.replication_factor} (the replication factor); acks=all writes "
                "could never succeed"
            )

    @property
    def min_isr(self) -> int:
        """The resolved ``min.insync.replicas`` of this topic."""
        if self.min_insync_replicas is not None:
            return self.min_insync_replicas
        return default_min_insync_replicas(self.replication_factor)

    def configs(self) -> dict[str, str]:
        """Topic configs to create and to verify: the registry's plus ``min.insync.replicas``."""
        return self.spec.configs(self.min_isr)

    @classmethod
    def of(
        cls,
        spec: TopicSpec,
        *,
        prefix: str,
        partitions: int,
        replication_factor: int,
        min_insync_replicas: int | None = None,
    ) -> TopicLayout:
        """Resolve ``spec`` against a deployment (``prefix``, default ``partitions``, replication)."""
        return cls(
            spec,
            spec.full_name(prefix),
            spec.partitions or partitions,
            replication_factor,
            min_insync_replicas,
        )


@dataclass(slots=True)
class TopicState:
    """What the broker holds for one topic, and how it differs from the registry."""

    name: str
    exists: bool
    partitions: int = 0
    configs: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    replication_factor: int = 0
    """Replicas of the topic's least-replicated partition (0 if it does not exist)."""
    min_insync_replicas: int | None = None
    """The broker's effective ``min.insync.replicas`` of the topic (``None`` if unknown)."""

    @property
    def ok(self) -> bool:
        """Whether the topic exists and matches the registry."""
        return self.exists and not self.problems


def layouts(
    prefix: str,
    partitions: int,
    replication_factor: int = 1,
    specs: Iterable[TopicSpec] | None = None,
    *,
    min_insync_replicas: int | None = None,
) -> list[TopicLayout]:
    """Return the layout of ``specs`` (default: every registry topic) for one deployment.

    ``min_insync_replicas`` ``None`` means ``max(1, replication_factor - 1)``.

    Raises:
        ConfigurationError: ``min_insync_replicas`` exceeds ``replication_factor``.
    """
    return [
        TopicLayout.of(
            s,
            prefix=prefix,
            partitions=partitions,
            replication_factor=replication_factor,
            min_insync_replicas=min_insync_replicas,
        )
        for s in (TOPICS.values() if specs is None else specs)
    ]


def settings_layouts(
    settings: DarkroomSettings,
    specs: Iterable[TopicSpec] | None = None,
    *,
    replication_factor: int | None = None,
) -> list[TopicLayout]:
    """:func:`layouts` with a deployment's settings: prefix, partitions, replication.

    Args:
        settings: gives ``topic_prefix``, ``topic_partitions``,
            ``topic_replication_factor`` and ``topic_min_insync_replicas``.
        specs: registry topics (default: all).
        replication_factor: overrides the settings' (e.g. a CLI flag); the default
            ``min.insync.replicas`` then follows it.

    Raises:
        ConfigurationError: the resulting ``min.insync.replicas`` exceeds the
            replication factor.
    """
    return layouts(
        settings.topic_prefix,
        settings.topic_partitions,
        replication_factor or settings.topic_replication_factor,
        specs,
        min_insync_replicas=settings.topic_min_insync_replicas,
    )


@asynccontextmanager
async def admin_client(
    bootstrap: str, *, timeout_s: float = 15.0
) -> AsyncIterator[AIOKafkaAdminClient]:
    """Yield a started admin client for ``bootstrap``.

    Raises:
        BrokerUnavailable: the cluster cannot be reached within ``timeout_s``.
    """
    client = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        await client.start()
    except (KafkaConnectionError, KafkaError, OSError) as exc:
        await client.close()
        raise BrokerUnavailable(f"cannot reach the Kafka cluster at {bootstrap}: {exc}") from exc
    try:
        yield client
    finally:
        await client.close()


async def create_topics(bootstrap: str, wanted: list[TopicLayout]) -> dict[str, str]:
    """Create every topic of ``wanted`` that does not exist yet.

    Returns:
        ``{topic: "created" | "exists"}``.

    Raises:
        BrokerUnavailable: the cluster cannot be reached.
        TopicMisconfigured: the broker refused to create a topic (its message included).
    """
    async with admin_client(bootstrap) as admin:
        existing = set(await admin.list_topics())
        todo = [t for t in wanted if t.name not in existing]
        result = {t.name: "exists" for t in wanted if t.name in existing}
        if todo:
            response = await admin.create_topics(
                [
                    NewTopic(
                        t.name,
                        num_partitions=t.partitions,
                        replication_factor=t.replication_factor,
                        topic_configs=t.configs(),
                    )
                    for t in todo
                ]
            )
            for topic, code, message in _topic_errors(response):
                if code == 0:
                    result[topic] = "created"
                elif code == TOPIC_ALREADY_EXISTS:
                    result[topic] = "exists"
                else:
                    raise TopicMisconfigured(
                        f"the broker refused to create {topic}: error {code} {message or ''}".strip()
                    )
            await _await_leaders(
                admin, [t for t, outcome in result.items() if outcome == "created"]
            )
        return result


async def _await_leaders(
    admin: AIOKafkaAdminClient, names: list[str], *, timeout_s: float = 15.0
) -> None:
    """Wait until every broker's metadata lists each topic of ``names`` with partition leaders.

    The controller commits a new topic before the brokers' metadata caches hold it,
    and the admin client asks a random broker each time: on a multi-node cluster a
    describe right after creation could otherwise find a new topic missing. Asks
    each broker of the cluster metadata in turn (aiokafka's ``_send_request_to_node``).
    Gives up silently after ``timeout_s`` seconds (a later describe reports the state).
    """
    if not names:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pending = {b.nodeId for b in admin._client.cluster.brokers()} or {-1}
    while pending and loop.time() < deadline:
        for node_id in sorted(pending):
            with contextlib.suppress(KafkaError, OSError, asyncio.TimeoutError):
                request = MetadataRequest(names)
                response = await (
                    admin._send_request(request)
                    if node_id < 0
                    else admin._send_request_to_node(node_id, request)
                )
                metas = response.to_object()["topics"]
                if len(metas) == len(names) and all(
                    m["error_code"] == 0
                    and m["partitions"]
                    and all(p["leader"] >= 0 for p in m["partitions"])
                    for m in metas
                ):
                    pending.discard(node_id)
        if pending:
            await asyncio.sleep(0.1)


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    out = []
    for entry in response.topic_errors:
        topic, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        out.append((topic, code, message))
    return out


ADMIN_DEADLINE_S = 30.0
"""How long a topic check keeps retrying a cluster that answers with errors (s).

A node of the cluster that is down (restarting, or SIGKILLed a moment ago) is still
listed in the metadata for a few seconds; an admin request the client sends to it
fails with ``NodeNotReadyError`` or ``KafkaConnectionError`` while the other nodes
answer. The request is sent again (the client picks another node) until this deadline."""

T = TypeVar("T")


async def _with_retries(
    bootstrap: str,
    read: Callable[[AIOKafkaAdminClient], Awaitable[T]],
    *,
    deadline_s: float = ADMIN_DEADLINE_S,
) -> T:
    """Run ``read`` with an admin client; on a Kafka error retry with a new client.

    Raises:
        BrokerUnavailable: the cluster still fails after ``deadline_s`` (the last error named).
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    delay = 0.25
    while True:
        try:
            async with admin_client(bootstrap) as admin:
                return await read(admin)
        except (KafkaError, OSError, BrokerUnavailable) as exc:
            if loop.time() + delay > end:
                raise BrokerUnavailable(
                    f"the Kafka cluster at {bootstrap} kept failing for {deadline_s:.0f} s: {exc!r}"
                ) from exc
            log.warning("topic check failed, retrying", extra={"error": repr(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)


async def _read_topics(
    admin: AIOKafkaAdminClient, names: list[str]
) -> tuple[set[str], dict[str, int], dict[str, int], dict[str, dict[str, str]]]:
    """Read which of ``names`` exist, their partitions, least replicas per partition and configs."""
    existing = set(await admin.list_topics())
    present = [n for n in names if n in existing]
    partitions: dict[str, int] = {}
    replicas: dict[str, int] = {}
    configs: dict[str, dict[str, str]] = {}
    if present:
        for meta in await admin.describe_topics(present):
            error = for_code(meta.get("error_code", 0) or 0)
            if error.retriable:  # e.g. no leader yet: ask again
                raise error(f"describing {meta['topic']}")
            partitions[meta["topic"]] = len(meta["partitions"])
            replicas[meta["topic"]] = min(
                (len(p["replicas"]) for p in meta["partitions"]), default=0
            )
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in present]
        )
        for response in responses:
            for resource in response.resources:
                code, message, name, entries = resource[0], resource[1], resource[3], resource[4]
                if code:
                    raise for_code(code)(f"describing the configs of {name}: {message}")
                configs[name] = {e[0]: e[1] for e in entries}
    return existing, partitions, replicas, configs


async def describe_topics(bootstrap: str, wanted: list[TopicLayout]) -> list[TopicState]:
    """Compare the broker's topics with ``wanted``; one :class:`TopicState` per topic.

    A node that is down makes the check retry on the others (:data:`ADMIN_DEADLINE_S`).

    Raises:
        BrokerUnavailable: the cluster cannot be reached, or keeps failing for
            :data:`ADMIN_DEADLINE_S`.
    """
    existing, partitions, replicas, configs = await _with_retries(
        bootstrap, lambda admin: _read_topics(admin, [t.name for t in wanted])
    )
    states = []
    for t in wanted:
        if t.name not in existing:
            states.append(TopicState(t.name, exists=False, problems=["missing"]))
            continue
        state = TopicState(
            t.name,
            True,
            partitions[t.name],
            configs.get(t.name, {}),
            replication_factor=replicas.get(t.name, 0),
        )
        with contextlib.suppress(KeyError, ValueError):
            state.min_insync_replicas = int(state.configs["min.insync.replicas"])
        if state.partitions < t.partitions:
            state.problems.append(
                f"has {state.partitions} partitions, registry wants {t.partitions}"
            )
        if state.replication_factor < t.replication_factor:
            state.problems.append(
                f"replication factor {state.replication_factor}, "
                f"settings want {t.replication_factor}"
            )
        for key, value in t.configs().items():
            actual = state.configs.get(key)
            if actual != value:
                wants = "settings want" if key == "min.insync.replicas" else "registry wants"
                state.problems.append(f"{key}={actual}, {wants} {value}")
        states.append(state)
    return states


async def verify_topics(bootstrap: str, wanted: list[TopicLayout], *, service: str) -> None:
    """Refuse to start ``service`` unless every topic in ``wanted`` matches the registry.

    Raises:
        TopicMisconfigured: listing each missing or misconfigured topic and the
            command that fixes it.
        BrokerUnavailable: the cluster cannot be reached.
    """
    bad = [s for s in await describe_topics(bootstrap, wanted) if not s.ok]
    if bad:
        details = "; ".join(f"{s.name}: {', '.join(s.problems)}" for s in bad)
        fix = f"Run `darkroom topics create` against {bootstrap} (or fix the topics by hand)"
        if any(p.startswith("replication factor ") for s in bad for p in s.problems):
            fix += (
                "; an existing topic keeps its replicas: add them with "
                "kafka-reassign-partitions, or delete and recreate the topic"
            )
        raise TopicMisconfigured(f"{service} cannot start: {details}. {fix} and start it again.")


async def partition_counts(bootstrap: str, topics: Iterable[str]) -> dict[str, int]:
    """Return ``{topic: partitions}`` for those of ``topics`` that exist.

    Raises:
        BrokerUnavailable: the cluster cannot be reached, or keeps failing for
            :data:`ADMIN_DEADLINE_S`.
    """
    names = list(topics)

    async def read(admin: AIOKafkaAdminClient) -> dict[str, int]:
        existing = set(await admin.list_topics())
        wanted = [t for t in names if t in existing]
        return (
            {m["topic"]: len(m["partitions"]) for m in await admin.describe_topics(wanted)}
            if wanted
            else {}
        )

    return await _with_retries(bootstrap, read)


async def read_to_end(
    bootstrap: str, topics: Iterable[str], *, since: datetime | None = None
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Yield every record of ``topics`` up to the end offsets they had when reading began.

    Reads from each partition's beginning, or with ``since`` from the first offset at
    or after that time (Kafka's offsets-for-times). Records of one partition come in
    offset order; topics that do not exist are skipped. Uses no consumer group (no
    offsets are committed), and explicit offsets: a lazy ``seek_to_beginning`` can
    lose to the ``latest`` reset.

    Raises:
        BrokerUnavailable: the cluster cannot be reached.
    """
    partitions = [
        TopicPartition(t, p)
        for t, count in (await partition_counts(bootstrap, topics)).items()
        for p in range(count)
    ]
    if not partitions:
        return
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        if since is not None:
            starts = await consumer.offsets_for_times(
                {tp: int(since.timestamp() * 1000) for tp in partitions}
            )
            for tp in partitions:
                at = starts.get(tp)
                consumer.seek(tp, at.offset if at is not None else ends[tp])
        else:
            for tp, offset in (await consumer.beginning_offsets(partitions)).items():
                consumer.seek(tp, offset)
        remaining = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        while remaining:
            for records in (await consumer.getmany(*remaining, timeout_ms=1000)).values():
                for record in records:
                    yield record
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    finally:
        # aiokafka's group-less coordinator re-raises the cancellation of its own
        # internal task on stop(); nothing of ours is being cancelled here.
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()
