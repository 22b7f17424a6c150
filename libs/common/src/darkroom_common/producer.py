"""The one event producer: an idempotent aiokafka producer behind the :class:`EventProducer` port.

Every path that writes to Kafka goes through :class:`KafkaEventProducer`: the stage
runtime (route outputs, changelogs, dead letters), the upload API, the catalog's
commands, the CLI and :class:`~darkroom_common.uploads.UploadPublisher` for your own
upload API. It sends with ``acks=all`` and idempotence (no duplicates from its own
retries, per-partition order kept), resolves registry names against the deployment's
topic prefix, keys each event by its topic's declared key field, and can be limited to
the topics one stage may write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from darkroom_common.errors import BrokerUnavailable, ConfigurationError
from darkroom_schemas import WireRecord, encode
from darkroom_schemas.topics import TOPICS

METADATA_MAX_AGE_MS = 10_000
"""How often every Darkroom Kafka client refreshes its cluster metadata at the latest (ms).

aiokafka's default is 5 minutes. A consumer whose partition leader moved (a broker
restarted) refreshes on most errors, but not when it looks up a reset offset: it asks the
old leader again, ``NotLeaderForPartitionError`` every retry, until the metadata ages
out. The chaos soak saw one partition stall for minutes so; with this it is seconds."""


class KafkaEventProducer:
    """Sends Darkroom events (and raw records) to one deployment's topics; waits for acks.

    Args:
        bootstrap: Kafka bootstrap servers, ``host:port[,host:port…]``.
        topic_prefix: the deployment's topic prefix (``darkroom.``).
        allowed: registry names :meth:`send` may write (``None``: any registry topic).
        client_id: the Kafka client id (shows in broker logs and quotas).
        linger_ms: how long the producer waits to fill a batch.

    Attributes:
        started: whether the producer is connected (between :meth:`start` and :meth:`stop`).
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        topic_prefix: str = "darkroom.",
        allowed: Iterable[str] | None = None,
        client_id: str = "darkroom",
        linger_ms: int = 0,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic_prefix = topic_prefix
        self.allowed = frozenset(allowed) if allowed is not None else None
        self.client_id = client_id
        self.linger_ms = linger_ms
        self.started = False
        self._client: AIOKafkaProducer | None = None

    @property
    def _producer(self) -> AIOKafkaProducer:
        if self._client is None:
            raise BrokerUnavailable("the event producer is not started")
        return self._client

    async def start(self) -> None:
        """Connect to the cluster (idempotent).

        Raises:
            BrokerUnavailable: the cluster cannot be reached.
        """
        if self._client is not None:
            return
        # aiokafka binds a producer to the running event loop: it is made here, not in __init__.
        client = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            metadata_max_age_ms=METADATA_MAX_AGE_MS,
            client_id=self.client_id,
            linger_ms=self.linger_ms,
        )
        try:
            await client.start()
        except (KafkaError, OSError) as exc:
            await client.stop()
            raise BrokerUnavailable(f"cannot reach the Kafka cluster: {exc}") from exc
        self._client = client
        self.started = True

    async def stop(self) -> None:
        """Flush pending records and disconnect (idempotent)."""
        self.started = False
        client, self._client = self._client, None
        if client is not None:
            await client.stop()

    async def __aenter__(self) -> KafkaEventProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def topic(self, name: str) -> str:
        """Return the broker-side name of registry topic ``name``.

        Raises:
            ConfigurationError: ``name`` is not in the registry, or not allowed here.
        """
        if name not in TOPICS:
            raise ConfigurationError(f"{name!r} is not a registry topic", reason_code="no_topic")
        if self.allowed is not None and name not in self.allowed:
            raise ConfigurationError(
                f"this producer may not write {name!r} (allowed: {', '.join(sorted(self.allowed))})",
                reason_code="topic_not_allowed",
            )
        return f"{self.topic_prefix}{name}"

    async def send(self, topic: str, value: WireRecord, *, key: bytes | None = None) -> None:
        """Send ``value`` to registry topic ``topic`` and wait for the broker's ack.

        Raises:
            BrokerUnavailable: not acknowledged (retriable).
            ConfigurationError: ``topic`` is unknown or not allowed.
        """
        await self.send_many([(topic, value, key)])

    async def send_many(
        self, records: Sequence[tuple[str, WireRecord, bytes | None]]
    ) -> list[RecordMetadata]:
        """Send every ``(topic, value, key)`` at once, then wait for all acks (in order).

        A ``None`` key is the value's field named by the topic's declared key.

        Raises:
            BrokerUnavailable: one of them was not acknowledged (retriable; the others
                may have been written: sends are at-least-once).
            ConfigurationError: a topic is unknown or not allowed (nothing was sent).
        """
        prepared = [
            (self.topic(t), encode(v), k if k is not None else TOPICS[t].key_of(v))
            for t, v, k in records
        ]
        futures = []
        try:
            for full, data, key in prepared:
                futures.append(await self._producer.send(full, data, key=key))
            return list(await asyncio.gather(*futures))
        except KafkaError as exc:
            raise BrokerUnavailable(f"the broker did not acknowledge an event: {exc}") from exc

    async def send_raw(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        """Start sending one raw record to the broker-side ``topic``; return its ack future.

        For the runtime's changelog records (explicit partition, ``None`` value for a
        delete), dead letters and requeues. Await the returned future for the
        :class:`~aiokafka.structs.RecordMetadata`.

        Raises:
            BrokerUnavailable: the record could not even be queued (retriable).
        """
        try:
            return await self._producer.send(
                topic, value, key=key, partition=partition, headers=headers
            )
        except KafkaError as exc:
            raise BrokerUnavailable(f"could not send to {topic}: {exc}") from exc

    async def flush(self) -> None:
        """Wait until every record sent so far was acknowledged or failed."""
        await self._producer.flush()

    async def partitions_for(self, topic: str) -> set[int]:
        """Return the partition numbers of the broker-side ``topic`` (from metadata)."""
        return set(await self._producer.partitions_for(topic))
