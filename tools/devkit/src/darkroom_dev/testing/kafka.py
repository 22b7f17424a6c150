"""pytest plugin: the session-scoped ``kafka_bootstrap`` fixture of every Kafka test.

Load it from a conftest with ``pytest_plugins = ["darkroom_dev.testing.kafka"]``.
The broker is chosen once per test session, first match wins:

1. ``KAFKA_BOOTSTRAP_SERVERS`` is set: that cluster is used as is.
2. A Docker engine answers ``docker info``: an ``apache/kafka`` container
   (single-node KRaft) via testcontainers.
3. Otherwise a :class:`~darkroom_dev.local.kafka.LocalKafka` broker on free ports
   in ``<repo>/.darkroom/test-kafka-<pid>``, removed at the end of the session.
   If tests failed, its logs are copied to ``<repo>/.darkroom/test-kafka-logs/``.

Tests that need several brokers (replication, losing a broker) request the
session-scoped ``kafka_cluster`` fixture instead: a
:class:`~darkroom_dev.local.cluster.LocalKafkaCluster` of three nodes in
``<repo>/.darkroom/test-kafka-cluster-<pid>``, started on first request only and
removed at the end of the session (logs kept in
``<repo>/.darkroom/test-kafka-cluster-logs/`` if tests failed). It ignores
``KAFKA_BOOTSTRAP_SERVERS`` and Docker: the tests kill and restart its nodes.
Mark such tests ``kafka`` and ``slow``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from darkroom_common.errors import BrokerUnavailable
from darkroom_dev.local.cluster import LocalKafkaCluster
from darkroom_dev.local.jars import repo_root
from darkroom_dev.local.kafka import LocalKafka, bootstrap_ready, free_port, free_ports

EXTERNAL_ENV = "KAFKA_BOOTSTRAP_SERVERS"
"""Environment variable naming an external cluster to test against."""

KAFKA_IMAGE = "apache/kafka:4.0.2"
"""Image of the Docker path: the Apache image (testcontainers' KafkaContainer expects Confluent's).

``DARKROOM_TEST_KAFKA_IMAGE`` overrides it."""


def docker_available(timeout_s: float = 5.0) -> bool:
    """Whether a Docker engine answers ``docker info`` within ``timeout_s`` seconds."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        proc = subprocess.run([docker, "info"], capture_output=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


@contextlib.contextmanager
def docker_kafka(timeout_s: float = 90.0) -> Iterator[str]:
    """Run a single-node ``apache/kafka`` container and yield its host-side bootstrap.

    The host port is chosen before the container starts because the advertised
    listener must name it; a second listener serves the broker's own traffic
    inside the container. Not supported: docker-in-docker setups where clients
    reach containers through a gateway address.

    Raises:
        BrokerUnavailable: the broker did not answer Metadata within ``timeout_s`` s.
    """
    from testcontainers.core.container import DockerContainer

    host_port = free_port()
    image = os.environ.get("DARKROOM_TEST_KAFKA_IMAGE", KAFKA_IMAGE)
    container = DockerContainer(image).with_bind_ports(9092, host_port)
    # The engine's host as clients reach it (localhost, or DOCKER_HOST's host); it
    # is known before start, unlike the gateway address of docker-in-docker setups.
    host = container.get_docker_client().host()
    env = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "HOST://0.0.0.0:9092,INTERNAL://0.0.0.0:19092,CONTROLLER://0.0.0.0:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"HOST://{host}:{host_port},INTERNAL://localhost:19092",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "HOST:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "INTERNAL",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_NUM_PARTITIONS": "1",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    }
    container.with_envs(**env)
    bootstrap = f"{host}:{host_port}"
    with container:
        deadline = time.monotonic() + timeout_s
        while not bootstrap_ready(bootstrap):
            if time.monotonic() >= deadline:
                logs = b"".join(part or b"" for part in container.get_logs())
                raise BrokerUnavailable(
                    f"the {image} container did not answer at {bootstrap} within "
                    f"{timeout_s:g} s:\n{logs.decode(errors='replace')[-3000:]}"
                )
            time.sleep(0.5)
        yield bootstrap


@contextlib.contextmanager
def session_kafka(session: pytest.Session | None = None) -> Iterator[str]:
    """Yield the bootstrap servers of the test cluster, chosen as the module docstring says.

    ``session`` lets the local path keep the broker logs when tests failed. If the
    local broker fails to start, its state dir is kept for inspection and the error
    (carrying the log tail) propagates.

    Raises:
        ConfigurationError, BrokerUnavailable: the broker could not be started.
    """
    if external := os.environ.get(EXTERNAL_ENV):
        yield external
        return
    if docker_available():
        with docker_kafka() as bootstrap:
            yield bootstrap
        return
    root = repo_root() / ".darkroom"
    state_dir = root / f"test-kafka-{os.getpid()}"
    shutil.rmtree(state_dir, ignore_errors=True)
    broker = LocalKafka(state_dir, *free_ports(2))
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()
        if session is not None and session.testsfailed:
            kept = root / "test-kafka-logs"
            kept.mkdir(parents=True, exist_ok=True)
            for log in (broker.log_path, broker.server_log_path):
                if log.is_file():
                    shutil.copy2(log, kept / log.name)
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    """The ``bootstrap.servers`` value (``"host:port"``) of a real Kafka cluster for this session.

    Auto-topic-creation is off on the brokers this fixture starts: create topics
    with ``AIOKafkaAdminClient`` first, with unique names per test.
    """
    with session_kafka(request.session) as bootstrap:
        yield bootstrap


CLUSTER_BROKERS = 3
"""Node count of the ``kafka_cluster`` fixture's cluster."""


@pytest.fixture(scope="session")
def kafka_cluster(request: pytest.FixtureRequest) -> Iterator[LocalKafkaCluster]:
    """A started local 3-node KRaft cluster (:class:`LocalKafkaCluster`) for this session.

    Use ``.bootstrap`` for clients; ``kill(i)``/``restart(i)`` inject broker loss.
    A test that kills a node restarts it before it ends, so later tests find all
    three nodes. Auto-topic-creation is off; replication factor 3 and
    ``min.insync.replicas`` 2 are the broker defaults.

    Raises:
        ConfigurationError, BrokerUnavailable: the cluster could not be started
            (its state dir is kept for inspection).
    """
    root = repo_root() / ".darkroom"
    state_dir = root / f"test-kafka-cluster-{os.getpid()}"
    shutil.rmtree(state_dir, ignore_errors=True)
    cluster = LocalKafkaCluster(state_dir, brokers=CLUSTER_BROKERS)
    cluster.start(timeout_s=180.0)
    try:
        yield cluster
    finally:
        cluster.stop()
        if request.session.testsfailed:
            kept = root / "test-kafka-cluster-logs"
            kept.mkdir(parents=True, exist_ok=True)
            for node in cluster.nodes:
                for log in (node.log_path, node.server_log_path):
                    if log.is_file():
                        shutil.copy2(log, kept / f"node-{node.node_id}-{log.name}")
        shutil.rmtree(state_dir, ignore_errors=True)
