"""One worker of one stage: its consumer group member, lanes, tables, web server and ports.

:class:`StageApp` is what ``mount`` fills in and ``run_service`` runs. It owns one
aiokafka consumer in the group ``<topic prefix><stage>`` (manual commits, the
:class:`~.assignor.CopartitionedAssignor`), one producer (the ports'), the lanes
(:mod:`.lanes`), the tables (:mod:`.tables`), the commit order
(:class:`~.checkpoint.Checkpoint`) and an aiohttp server with ``/healthz``,
``/readyz`` and ``/metrics`` beside any routes the stage adds.

A rebalance goes like this. **Revoked**: the lanes drop the queued records of the
revoked partitions and finish (or, after ``revoke_timeout_s``, abandon) the event in
hand; the done offsets are committed; the tables stop serving those partitions.
**Assigned**: a stage with tables pauses the new partitions, restores each
partition's tables from their changelogs (:class:`~.tables.Restorer`, outside the
rebalance callback so heartbeats go on), then resumes it; a stage without tables
resumes at once. aiokafka positions each partition at its committed offset (or the
beginning, ``auto_offset_reset="earliest"``) before it fetches; no record is handed
to a lane before that, or from an earlier assignment (:meth:`StageApp.owns`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import ClientSession, web
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from darkroom_common.metrics import Metrics
from darkroom_common.ports import Ports
from darkroom_common.producer import METADATA_MAX_AGE_MS, KafkaEventProducer
from darkroom_common.settings import DarkroomSettings
from darkroom_runtime.assignor import CopartitionedAssignor
from darkroom_runtime.checkpoint import Checkpoint
from darkroom_runtime.lag import LagExporter
from darkroom_runtime.lanes import Lane
from darkroom_runtime.runner import RecordRunner
from darkroom_runtime.tables import CodecName, Restorer, StoreKind, Table, partition_for
from darkroom_schemas.topics import Stage, changelog_name
from darkroom_schemas.topics import stage as registry_stage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Located:
    """Where a partition is served: ``here``, at ``url`` (another worker), or ``unknown``."""

    where: Literal["here", "elsewhere", "unknown"]
    url: str | None = None


class StageApp:
    """One worker of stage ``stage_name`` (see the module docstring).

    Args:
        stage_name: a stage of the registry (``catalog``).
        settings: the service's settings (cluster, prefix, partitions, web, timeouts).
        store: where tables keep their partitions: ``memory`` or ``rocksdb`` (under
            ``<data_dir>/<group id>/tables``).

    Attributes:
        stage: the registry stage.
        group_id: the consumer group, ``<topic prefix><stage>``.
        web: the aiohttp application; add routes before :meth:`start`.
        http: a client session for forwarding (open between :meth:`start` and :meth:`stop`).
    """

    def __init__(
        self, stage_name: str, settings: DarkroomSettings, *, store: StoreKind = "memory"
    ) -> None:
        self.stage: Stage = registry_stage(stage_name)
        self.settings = settings
        self.group_id = settings.topic(stage_name)
        self.store_kind = store
        self.url = settings.web_url or _default_url(settings.web_host, settings.web_port)
        self.assignor = CopartitionedAssignor(self.url)
        self.tables: dict[str, Table] = {}
        self.web = web.Application()
        self.http: ClientSession | None = None
        self.ports: Ports | None = None
        self.runner: RecordRunner
        self.checkpoint: Checkpoint
        self.producer: KafkaEventProducer
        self._metrics: Metrics | None = None
        self._lanes: dict[str, Lane] = {}
        self._lane_of: dict[str, Lane] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._restorer: Restorer | None = None
        self._assigned: set[TopicPartition] = set()
        self._fetching: set[TopicPartition] = set()
        self._generation = 0
        self._assignments = 0
        self._rebalancing = True
        self._restoring: dict[int, asyncio.Task[None]] = {}
        self._paused: dict[TopicPartition, set[str]] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._timers: list[tuple[float, Callable[[], Awaitable[None]]]] = []
        self._ready_hooks: list[Callable[[int], Awaitable[object]]] = []
        self._services: list[
            tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]
        ] = []
        self._web_runner: web.AppRunner | None = None
        self._stopped = asyncio.Event()
        self._started = False
        self.web.router.add_get("/healthz", self._healthz)
        self.web.router.add_get("/readyz", self._readyz)
        self.web.router.add_get("/metrics", self._metrics_page)

    # ---- declaring ----------------------------------------------------------

    def table(
        self,
        name: str,
        *,
        lane: str,
        key_codec: CodecName = "raw",
        value_codec: CodecName = "json",
    ) -> Table:
        """Declare one of the stage's tables (a name of the registry stage's ``state``).

        Args:
            lane: the lane whose handlers write it (a route's ``lane``, or its topic).

        Raises:
            KeyError: the registry stage keeps no such table.
        """
        changelog = self.settings.topic(self.stage.changelog(name))
        table = Table(
            name,
            changelog=changelog,
            partitions=self.settings.topic_partitions,
            lane=lane,
            store=self.store_kind,
            directory=self.settings.data_dir / self.group_id / "tables" / name,
            key_codec=key_codec,
            value_codec=value_codec,
        )
        self.tables[name] = table
        return table

    def every(self, interval_s: float, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``fn`` every ``interval_s`` seconds while the worker runs (errors are logged)."""
        self._timers.append((interval_s, fn))

    def on_partition_ready(self, hook: Callable[[int], Awaitable[object]]) -> None:
        """Await ``hook(partition)`` after a partition's tables are restored, before its records flow.

        For a stage with tables: every assignment of partition number ``partition`` runs
        the hooks once, after the restore and before any record of that partition
        reaches a lane. A hook that raises is retried with the restore (back-off up to
        30 s), so it must be idempotent. The catalog uses it to learn which ``cataloged``
        events are already on the topic (:mod:`darkroom_catalog.fence`).
        """
        self._ready_hooks.append(hook)

    def service(
        self, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
    ) -> None:
        """Start ``start()`` with the worker and ``stop()`` when it stops (in reverse order)."""
        self._services.append((start, stop))

    def on_stop(self, stop: Callable[[], Awaitable[None]]) -> None:
        """Call ``stop()`` when the worker stops (after its lanes, before its producer)."""

        async def nothing() -> None:
            return None

        self.service(nothing, stop)

    def attach(self, lanes: Iterable[Lane], ports: Ports, runner: RecordRunner) -> None:
        """Install the lanes, ports and runner built by :func:`~darkroom_runtime.mount.mount`."""
        assert isinstance(ports.producer, KafkaEventProducer)
        self.ports = ports
        self.producer = ports.producer
        self._metrics = ports.metrics
        self.runner = runner
        for lane in lanes:
            self._lanes[lane.name] = lane
            for topic in lane.topics:
                self._lane_of[topic] = lane

    # ---- state the API and the lanes read --------------------------------------

    @property
    def topics(self) -> list[str]:
        """The broker-side topics the group consumes."""
        return sorted(self._lane_of)

    @property
    def assigned(self) -> set[TopicPartition]:
        """The partitions this worker holds now."""
        return set(self._assigned)

    def owns(self, tp: TopicPartition, generation: int) -> bool:
        """Whether ``tp`` is assigned, in the assignment that fetched a record (``generation``)."""
        return generation == self._generation and tp in self._assigned

    def locate(self, partition: int) -> Located:
        """Where ``partition`` (of every co-partitioned topic and table) is served now."""
        if self._rebalancing:
            return Located("unknown")
        mine = {tp.partition for tp in self._assigned}
        if partition in mine:
            if partition in self._restoring:
                return Located("unknown")
            return Located("here")
        url = self.assignor.owners.get(partition)
        if url is None or url == self.url:
            return Located("unknown")
        return Located("elsewhere", url)

    def partition_of(self, key: str) -> int:
        """The partition events keyed by ``key`` go to (Kafka's default partitioner)."""
        return partition_for(key.encode(), self.settings.topic_partitions)

    def ready_problems(self) -> list[str]:
        """Why this worker is not ready to serve (empty when it is)."""
        problems = []
        if not self._started:
            problems.append("starting")
        if self._rebalancing:
            problems.append("rebalancing" if self._assignments else "no partition assignment yet")
        if self._restoring:
            problems.append(f"restoring {len(self._restoring)} partition(s)")
        settings = self.ports.gallery_settings if self.ports else None
        if settings is not None and not getattr(settings, "is_ready", True):
            problems.append("gallery settings not read yet")
        return problems

    # ---- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Connect everything and join the consumer group.

        Raises:
            BrokerUnavailable: the producer could not connect.
            OSError: the web port is taken.
        """
        assert self.ports is not None, "mount() the stage before starting it"
        self._stopped.clear()
        metrics = self.ports.metrics
        await self.producer.start()
        for start, _ in self._services:
            await start()
        self.http = ClientSession()
        self._web_runner = web.AppRunner(self.web, access_log=None)
        await self._web_runner.setup()
        await web.TCPSite(self._web_runner, self.settings.web_host, self.settings.web_port).start()
        if self.tables:
            self._restorer = Restorer(
                self.settings.kafka_bootstrap_servers,
                client_id=self.group_id,
                on_restored=lambda table, n: metrics.restored_records.labels(
                    self.stage.name, table
                ).inc(n),
            )
        session_ms = int(self.settings.session_timeout_s * 1000)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=self.group_id,
            client_id=f"{self.group_id}-{socket.gethostname()}-{os.getpid()}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(self.assignor,),
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(1000, session_ms // 4),
            rebalance_timeout_ms=max(
                session_ms, int(self.settings.revoke_timeout_s * 1000) + 10_000
            ),
            max_poll_interval_ms=300_000,
            max_poll_records=self.settings.max_poll_records,
            metadata_max_age_ms=METADATA_MAX_AGE_MS,
        )
        self.checkpoint = Checkpoint(
            self._consumer,
            interval_s=self.settings.commit_interval_s,
            on_commit=lambda n: metrics.commits.labels(self.stage.name).inc(),
        )
        self._consumer.subscribe(self.topics, listener=_Listener(self))
        await self._consumer.start()
        for lane in self._lanes.values():
            lane.start()
        self._tasks = [
            asyncio.create_task(self._fetch(), name="fetch"),
            asyncio.create_task(self.checkpoint.run(), name="commit"),
            *(
                asyncio.create_task(self._every(i, fn), name=f"timer:{getattr(fn, '__name__', fn)}")
                for i, fn in self._timers
            ),
        ]
        lag = LagExporter(self.settings.kafka_bootstrap_servers, self.group_id, lambda: self.topics)
        self._tasks.append(asyncio.create_task(lag.run(), name="consumer-lag"))
        self._started = True
        log.info(
            "worker started",
            extra={"group": self.group_id, "topics": len(self.topics), "url": self.url},
        )

    async def stop(self) -> None:
        """Finish the events in hand, commit, leave the group and close everything (idempotent)."""
        if not self._started:
            return
        self._started = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for restore in self._restoring.values():
            restore.cancel()
        await asyncio.gather(*self._restoring.values(), return_exceptions=True)
        self._restoring.clear()
        await asyncio.gather(
            *(lane.stop(self.settings.shutdown_grace_s) for lane in self._lanes.values())
        )
        if self._consumer is not None:
            await self.checkpoint.commit()
            with contextlib.suppress(KafkaError, asyncio.CancelledError):
                await self._consumer.stop()
            self._consumer = None
        if self._restorer is not None:
            await self._restorer.close()
        for _, stop in reversed(self._services):
            with contextlib.suppress(Exception):
                await stop()
        await self.producer.stop()
        if self.http is not None:
            await self.http.close()
            self.http = None
        if self._web_runner is not None:
            await self._web_runner.cleanup()
            self._web_runner = None
        for table in self.tables.values():
            table.close()
        assert self.ports is not None
        await self.ports.store.close()
        self._stopped.set()
        log.info("worker stopped", extra={"group": self.group_id})

    async def run(self, stop: asyncio.Event) -> None:
        """Start, run until ``stop`` is set, then stop."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # ---- fetching and flow control -------------------------------------------

    async def _fetch(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=200)
            except (KafkaError, OSError) as exc:
                log.warning("fetch failed", extra={"error": f"{type(exc).__name__}: {exc}"})
                await asyncio.sleep(1.0)
                continue
            generation = self._generation
            by_lane: dict[Lane, list[list[ConsumerRecord[bytes, bytes]]]] = {}
            for tp, records in batch.items():
                if records and tp in self._fetching:
                    by_lane.setdefault(self._lane_of[tp.topic], []).append(records)
            for lane, runs in by_lane.items():
                # A lane of several topics takes their records in timestamp order (each
                # partition's own order kept), as Kafka Streams does across a task's inputs.
                lane.put(generation, heapq.merge(*runs, key=lambda r: r.timestamp))

    def backlog_changed(self, lane: Lane) -> None:
        """Pause the lane's partitions above its high water mark, resume below its low one."""
        tps = [tp for tp in self._assigned if tp.topic in lane.routes]
        if lane.backlog >= lane.high_water:
            self._pause(tps, "backlog")
        elif lane.backlog <= lane.low_water:
            self._resume(tps, "backlog")

    def _pause(self, tps: Iterable[TopicPartition], reason: str) -> None:
        fresh = []
        for tp in tps:
            reasons = self._paused.setdefault(tp, set())
            if not reasons:
                fresh.append(tp)
            reasons.add(reason)
        if fresh and self._consumer is not None:
            self._consumer.pause(*fresh)

    def _resume(self, tps: Iterable[TopicPartition], reason: str) -> None:
        freed = []
        for tp in tps:
            reasons = self._paused.get(tp)
            if reasons is None or reason not in reasons:
                continue
            reasons.discard(reason)
            if not reasons:
                del self._paused[tp]
                if tp in self._assigned:
                    freed.append(tp)
        if freed and self._consumer is not None:
            self._consumer.resume(*freed)

    # ---- rebalancing ---------------------------------------------------------

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Finish or abandon the revoked partitions' events, commit them, stop serving them.

        Fetched records of those partitions stop being queued and the queued ones are
        dropped at once; the event in hand may finish (``revoke_timeout_s``) and is
        committed with the rest, so a clean rebalance handles nothing twice.
        """
        self._rebalancing = True
        self._fetching -= revoked
        for lane in self._lanes.values():
            lane.drop(revoked)
        numbers = {tp.partition for tp in revoked}
        for number in list(self._restoring):
            if number in numbers:
                self._restoring.pop(number).cancel()
        await asyncio.gather(
            *(lane.settle(revoked, self.settings.revoke_timeout_s) for lane in self._lanes.values())
        )
        await self.checkpoint.commit(revoked)
        self.checkpoint.forget(revoked)
        self._assigned -= revoked
        self._generation += 1  # what was fetched before is never handled after this point
        for tp in revoked:
            self._paused.pop(tp, None)
        for table in self.tables.values():
            for number in numbers:
                table.release(number)
        log.info("partitions revoked", extra={"partitions": len(revoked)})

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Take the new partitions: restore their tables first when the stage has any."""
        self._generation += 1
        self._assignments += 1
        self._assigned = set(assigned)
        self._fetching = set(assigned)
        numbers = sorted({tp.partition for tp in assigned})
        assert self.ports is not None
        self.ports.metrics.rebalances.labels(self.stage.name).inc()
        self.ports.metrics.assigned_partitions.labels(self.stage.name).set(len(numbers))
        if self.tables:
            self._pause(assigned, "restore")
            for number in numbers:
                self._restoring[number] = asyncio.create_task(
                    self._restore(number), name=f"restore:{number}"
                )
        self._rebalancing = False
        log.info("partitions assigned", extra={"partitions": numbers, "url": self.url})

    async def _restore(self, number: int) -> None:
        assert self._restorer is not None
        assert self.ports is not None
        delay = 0.5
        started = asyncio.get_running_loop().time()
        while True:
            try:
                records = await self._restorer.restore(list(self.tables.values()), number)
                for hook in self._ready_hooks:
                    await hook(number)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "restoring a partition failed; trying again",
                    extra={"partition": number, "error": f"{type(exc).__name__}: {exc}"},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        seconds = asyncio.get_running_loop().time() - started
        self.ports.metrics.restore_seconds.labels(self.stage.name).observe(seconds)
        self._restoring.pop(number, None)
        self._resume([tp for tp in self._assigned if tp.partition == number], "restore")
        log.info(
            "partition restored",
            extra={"partition": number, "records": records, "seconds": round(seconds, 3)},
        )

    async def _every(self, interval_s: float, fn: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await fn()
            except Exception:
                log.exception("a periodic task failed")

    # ---- web -----------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        if problems := self.ready_problems():
            return web.json_response(
                {"reason": "not_ready", "message": "; ".join(problems)},
                status=503,
                headers={"Retry-After": "1"},
            )
        return web.json_response({"status": "ready"})

    async def _metrics_page(self, request: web.Request) -> web.Response:
        registry = self._metrics.registry if self._metrics is not None else None
        body = generate_latest(registry) if registry is not None else generate_latest()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


class _Listener(ConsumerRebalanceListener):
    def __init__(self, app: StageApp) -> None:
        self.app = app

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.app.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.app.on_assigned(set(assigned))


def _default_url(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"http://{host}:{port}"


__all__ = ["Located", "StageApp", "changelog_name"]
