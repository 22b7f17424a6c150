"""Consumer lag per partition, exported as ``darkroom_consumer_lag{group,topic,partition}``.

Every stage worker runs a :class:`LagExporter` (started by
:class:`darkroom_runtime.app.StageApp`). Every ``interval_s``
seconds it asks the broker for the consumer group's committed offsets
(the admin client's ``list_consumer_group_offsets``) and for the end offset of
every partition of every topic the worker's routes consume (a group-less
consumer's ``end_offsets``), and sets the gauge to ``end - committed``
messages. A partition the group never committed counts from the partition's
beginning offset, as the workers do (``auto_offset_reset=earliest``).

The lag is the whole group's, computed from the broker, so every worker of a
group exports the same series; aggregate with ``max by (group, topic, partition)``.
A failed poll (broker down) keeps the last values, logs a warning and counts
``darkroom_consumer_lag_errors_total{group}``; the exporter never stops the worker.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from darkroom_common.metrics import metric_name

DEFAULT_INTERVAL_S = 15.0
"""How often each worker recomputes its group's lag (seconds)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LagMetrics:
    """The lag families: ``darkroom_consumer_lag`` (gauge) and its poll error counter."""

    lag: Gauge
    errors: Counter


@functools.cache
def lag_metrics(registry: CollectorRegistry = REGISTRY) -> LagMetrics:
    """Return the lag families of ``registry``, registered there once per process."""
    return LagMetrics(
        lag=Gauge(
            metric_name("consumer", "lag"),
            "Messages not yet committed by a consumer group: end offset minus committed offset, "
            "per topic partition.",
            ["group", "topic", "partition"],
            registry=registry,
        ),
        errors=Counter(
            metric_name("consumer", "lag", "errors"),
            "Lag polls that failed (broker unreachable, timeout), by consumer group.",
            ["group"],
            registry=registry,
        ),
    )


class LagExporter:
    """Compute one consumer group's lag from the broker and publish it as gauges.

    Args:
        bootstrap: the Kafka cluster, ``host:port[,host:port…]``.
        group: the consumer group (``<topic prefix><stage>``).
        topics: returns the topics the group consumes; called on every poll.
        metrics: where to publish (default: the process registry's families).
        timeout_s: broker request timeout of one poll (seconds).
    """

    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: Callable[[], Iterable[str]],
        *,
        metrics: LagMetrics | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.topics = topics
        self.metrics = metrics if metrics is not None else lag_metrics()
        self.timeout_s = timeout_s
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            timeout_ms = int(self.timeout_s * 1000)
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                request_timeout_ms=timeout_ms,
                client_id=f"{self.group}-lag",
            )
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=timeout_ms,
                client_id=f"{self.group}-lag",
            )
            try:
                await admin.start()
                await consumer.start()
            except BaseException:
                await admin.close()
                await consumer.stop()
                raise
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def close(self) -> None:
        """Close the broker clients (a later :meth:`poll` opens new ones)."""
        admin, consumer = self._admin, self._consumer
        self._admin = self._consumer = None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()

    async def lag(self) -> dict[TopicPartition, int]:
        """Return ``{partition: messages behind}`` for every partition of the group's topics.

        Topics that do not exist on the broker are skipped. The partitions come from the
        admin client's topic metadata, the committed offsets from the group coordinator.

        Raises:
            KafkaError, OSError, asyncio.TimeoutError: the broker could not answer.
        """
        admin, consumer = await self._clients()
        wanted = set(self.topics())
        if not wanted:
            return {}
        # Only existing topics: a metadata request naming a missing topic may auto-create it.
        existing = wanted & set(await admin.list_topics())
        if not existing:
            return {}
        partitions = [
            TopicPartition(t["topic"], p["partition"])
            for t in await admin.describe_topics(sorted(existing))
            if t.get("error_code", 0) == 0
            for p in t.get("partitions", ())
        ]
        if not partitions:
            return {}
        committed = await admin.list_consumer_group_offsets(self.group, partitions=partitions)
        ends = await consumer.end_offsets(partitions)
        never = [tp for tp in partitions if tp not in committed or committed[tp].offset < 0]
        starts = await consumer.beginning_offsets(never) if never else {}
        result = {}
        for tp in partitions:
            done = starts[tp] if tp in starts else committed[tp].offset
            result[tp] = max(0, ends[tp] - done)
        return result

    async def poll(self) -> dict[TopicPartition, int] | None:
        """Compute the lag once and set the gauges; ``None`` (and a warning) if the broker failed."""
        try:
            lag = await asyncio.wait_for(self.lag(), timeout=self.timeout_s * 3)
        except (KafkaError, OSError, TimeoutError) as exc:
            self.metrics.errors.labels(self.group).inc()
            log.warning(
                "consumer lag poll failed",
                extra={"group": self.group, "error": f"{type(exc).__name__}: {exc}"},
            )
            await self.close()
            return None
        for tp, messages in lag.items():
            self.metrics.lag.labels(self.group, tp.topic, str(tp.partition)).set(messages)
        return lag

    async def run(self, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        """Poll every ``interval_s`` seconds until cancelled, then close the clients."""
        try:
            while True:
                await self.poll()
                await asyncio.sleep(interval_s)
        finally:
            await asyncio.shield(self.close())
