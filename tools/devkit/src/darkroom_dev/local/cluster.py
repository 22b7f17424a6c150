"""A real local 3-node Apache Kafka cluster (KRaft, each node a combined broker+controller).

Every node is a :class:`~darkroom_dev.local.kafka.LocalKafka` with its own
``node.id``, the same cluster id and the same static ``controller.quorum.voters``
(all nodes), so the KRaft quorum survives the loss of one node. Replication
defaults are production-like: ``default.replication.factor``,
``offsets.topic.replication.factor`` and ``transaction.state.log.replication.factor``
are the node count (max 3), ``min.insync.replicas`` and
``transaction.state.log.min.isr`` one less (at least 1). One state directory
holds the cluster::

    <state_dir>/
        cluster.json        cluster id and every node's (port, controller_port); written once
        node-0/ node-1/ ... one LocalKafka state dir per node (server.properties, data, logs)

Ports are chosen free once and recorded, so a restarted node (or the whole
cluster after ``stop``) comes back on the same addresses its peers and clients know.
Readiness is a Kafka Metadata request answered with an elected controller and
every node registered as a broker.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from pathlib import Path
from typing import Any

from darkroom_common.errors import BrokerUnavailable, ConfigurationError
from darkroom_dev.local.jars import repo_root
from darkroom_dev.local.kafka import (
    HOST,
    LocalKafka,
    _cluster_id,
    _tail,
    free_ports,
    probe_metadata,
)

CLUSTER_HEAP_OPTS = ("-Xms128m", "-Xmx384m")
"""JVM heap of each cluster node: three JVMs share a small dev machine."""

CLUSTER_FILE = "cluster.json"
"""Name of the file in the state dir that records the cluster id and the ports."""


def default_cluster_dir() -> Path:
    """Return ``<repo>/.darkroom/kafka-cluster``, the state dir of ``darkroom kafka --brokers 3``."""
    return repo_root() / ".darkroom" / "kafka-cluster"


def cluster_config(brokers: int) -> dict[str, str]:
    """The ``server.properties`` entries a cluster of ``brokers`` nodes adds to the single-node ones.

    Replication factors are ``min(brokers, 3)``; ``min.insync.replicas`` (the broker
    default, so also ``__consumer_offsets``) and the transaction log's min ISR are
    one less, at least 1. Group rebalance delay stays 0 as for the single node.
    """
    replicas = min(brokers, 3)
    min_isr = max(1, replicas - 1)
    return {
        "default.replication.factor": str(replicas),
        "offsets.topic.replication.factor": str(replicas),
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min_isr),
        "share.coordinator.state.topic.replication.factor": str(replicas),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        "min.insync.replicas": str(min_isr),
        "group.initial.rebalance.delay.ms": "0",
    }


class LocalKafkaCluster:
    """A local KRaft cluster of ``brokers`` combined broker+controller nodes in ``state_dir``.

    Args:
        state_dir: the cluster's folder; node ``i`` (``node.id`` ``i``) lives in
            ``state_dir/"node-<i>"``.
        brokers: node count, 1 to 9 (3 for the usual RF 3 / min ISR 2 cluster).

    Free ports are chosen on the first construction and kept in ``cluster.json``;
    a state dir made for another node count is refused.

    Raises:
        ConfigurationError: ``brokers`` out of range, or ``cluster.json`` records
            another node count or is unreadable.

    Attributes:
        nodes: the :class:`LocalKafka` of each node, index = ``node.id``.
    """

    def __init__(self, state_dir: Path, brokers: int = 3) -> None:
        if not 1 <= brokers <= 9:
            raise ConfigurationError(f"a local cluster has 1 to 9 brokers, not {brokers}")
        self.state_dir = Path(state_dir).absolute()
        self.brokers = brokers
        cluster_id, ports = self._recorded_or_new()
        voters = ",".join(f"{i}@{HOST}:{controller}" for i, (_, controller) in enumerate(ports))
        extra = cluster_config(brokers)
        self.cluster_id = cluster_id
        self.nodes: list[LocalKafka] = [
            LocalKafka(
                self.state_dir / f"node-{i}",
                port,
                controller,
                node_id=i,
                voters=voters,
                cluster_id=cluster_id,
                extra_config=extra,
                heap_opts=CLUSTER_HEAP_OPTS,
            )
            for i, (port, controller) in enumerate(ports)
        ]

    def _recorded_or_new(self) -> tuple[str, list[tuple[int, int]]]:
        path = self.state_dir / CLUSTER_FILE
        if path.is_file():
            try:
                body = json.loads(path.read_text())
                cluster_id = str(body["cluster_id"])
                ports = [(int(p), int(c)) for p, c in body["ports"]]
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigurationError(f"{path} is not a cluster record: {exc}") from exc
            if len(ports) != self.brokers:
                raise ConfigurationError(
                    f"the local cluster in {self.state_dir} has {len(ports)} brokers, "
                    f"not {self.brokers}; use another state dir or remove this one"
                )
            return cluster_id, ports
        free = list(free_ports(2 * self.brokers))
        ports = [(free[2 * i], free[2 * i + 1]) for i in range(self.brokers)]
        cluster_id = _cluster_id()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"cluster_id": cluster_id, "ports": ports}, indent=2) + "\n")
        return cluster_id, ports

    @property
    def bootstrap(self) -> str:
        """``bootstrap.servers`` naming every node: ``"127.0.0.1:p0,127.0.0.1:p1,..."``."""
        return ",".join(node.bootstrap for node in self.nodes)

    def alive(self, node: int) -> bool:
        """Whether node ``node``'s java process is running (not whether it serves yet)."""
        return self.nodes[node].pid() is not None

    def registered_brokers(self, *, timeout_s: float = 1.0) -> set[int] | None:
        """Node ids the cluster lists as live brokers, asking each running node in turn.

        Returns ``None`` when no node answers Metadata with an elected controller.
        Never raises.
        """
        for node in self.nodes:
            if node.pid() is None:
                continue
            try:
                meta = probe_metadata(HOST, node.port, timeout_s=timeout_s)
            except BrokerUnavailable:
                continue
            if meta.controller_id >= 0:
                return {broker.node_id for broker in meta.brokers}
        return None

    def serving(self, node: int, *, timeout_s: float = 1.0) -> bool:
        """Whether node ``node`` itself answers Metadata with a controller and lists itself.

        A KRaft broker opens its listeners to requests only once the controller has
        unfenced it, so this is true only for the running incarnation (a killed
        node stays listed by its peers for ``broker.session.timeout.ms``). Never raises.
        """
        kafka = self.nodes[node]
        if kafka.pid() is None:
            return False
        try:
            meta = probe_metadata(HOST, kafka.port, timeout_s=timeout_s)
        except BrokerUnavailable:
            return False
        return meta.controller_id >= 0 and kafka.node_id in {b.node_id for b in meta.brokers}

    def _failure_text(self) -> str:
        parts = []
        for node in self.nodes:
            parts.append(f"--- node {node.node_id}: tail of {node.server_log_path} ---")
            parts.append(_tail(node.server_log_path, 15))
            parts.append(f"--- node {node.node_id}: tail of {node.log_path} ---")
            parts.append(_tail(node.log_path, 10))
        return "\n".join(parts)

    def _wait_for(self, wanted: set[int], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            dead = [
                node.node_id for node in self.nodes if node.node_id in wanted and not node.pid()
            ]
            if dead:
                raise ConfigurationError(
                    f"Kafka node(s) {dead} in {self.state_dir} exited during {what}\n"
                    + self._failure_text()
                )
            registered = self.registered_brokers()
            if (
                registered is not None
                and wanted <= registered
                and all(self.serving(i) for i in wanted)
            ):
                return
            if time.monotonic() >= deadline:
                raise BrokerUnavailable(
                    f"the local Kafka cluster did not list brokers {sorted(wanted)} within "
                    f"{timeout_s:g} s during {what} (listed: {registered})\n" + self._failure_text()
                )
            time.sleep(0.25)

    def start(self, timeout_s: float = 120.0) -> str:
        """Start every node not running (idempotent) and wait until all are registered brokers.

        All nodes are launched before any wait, since no controller is elected
        before a majority of the voters runs. Returns :attr:`bootstrap`.

        Raises:
            ConfigurationError: java/Maven missing, a port taken by another program,
                formatting failed, or a node exited during start-up (the message
                carries the logs' tails).
            BrokerUnavailable: not every node listed within ``timeout_s`` seconds.

        On either error the nodes this call launched are stopped again.
        """
        launched = [node for node in self.nodes if node.pid() is None]
        try:
            # In parallel: each first start formats its storage in a JVM of its own.
            with concurrent.futures.ThreadPoolExecutor(len(self.nodes)) as pool:
                for future in [pool.submit(node.start, wait=False) for node in self.nodes]:
                    future.result()
            self._wait_for({node.node_id for node in self.nodes}, timeout_s, "start-up")
        except (BrokerUnavailable, ConfigurationError):
            self._stop_nodes(launched, timeout_s=10.0)
            raise
        return self.bootstrap

    def kill(self, node: int) -> None:
        """SIGKILL node ``node``'s process group now (fault injection); a no-op if it is down."""
        self.nodes[node].kill()

    def restart(self, node: int, timeout_s: float = 60.0) -> None:
        """Start node ``node`` again on its data and ports and wait until it is a registered broker.

        Raises:
            ConfigurationError: the node exited during start-up or its port is taken.
            BrokerUnavailable: the cluster did not list it within ``timeout_s`` seconds.
        """
        self.nodes[node].start(wait=False)
        self._wait_for({self.nodes[node].node_id}, timeout_s, f"restart of node {node}")

    def _stop_nodes(self, nodes: list[LocalKafka], timeout_s: float) -> bool:
        # In parallel: stopped one by one, the last nodes lose the quorum and their
        # controlled shutdown waits for a controller that no longer comes.
        results: list[bool] = []
        threads = [
            threading.Thread(target=lambda n=node: results.append(n.stop(timeout_s)))
            for node in nodes
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return any(results)

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop every node at once: SIGTERM, then SIGKILL after ``timeout_s`` seconds.

        Returns ``True`` if any node was running.
        """
        return self._stop_nodes(self.nodes, timeout_s)

    def status(self) -> dict[str, Any]:
        """Describe the cluster as a JSON-ready dict.

        Keys: ``running`` (every node alive and registered), ``brokers`` (node
        count), ``registered`` (sorted node ids the cluster lists, or ``None``),
        ``bootstrap``, ``state_dir``, ``nodes`` (each node's
        :meth:`LocalKafka.status` plus ``node_id``).
        """
        registered = self.registered_brokers()
        all_ids = {node.node_id for node in self.nodes}
        return {
            "running": registered is not None
            and all_ids <= registered
            and all(self.alive(i) for i in range(len(self.nodes))),
            "brokers": self.brokers,
            "registered": sorted(registered) if registered is not None else None,
            "bootstrap": self.bootstrap,
            "state_dir": str(self.state_dir),
            "nodes": [{"node_id": node.node_id, **node.status()} for node in self.nodes],
        }
