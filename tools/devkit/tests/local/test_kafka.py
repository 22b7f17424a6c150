"""The local Kafka broker and the ``kafka_bootstrap`` fixture, against real brokers."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import UnknownTopicOrPartitionError

from darkroom_cli.__main__ import main
from darkroom_common.errors import BrokerUnavailable, ConfigurationError
from darkroom_dev.local.kafka import (
    BrokerInfo,
    LocalKafka,
    bootstrap_ready,
    probe_metadata,
    recorded_ports,
)
from darkroom_dev.testing.kafka import free_port, free_ports, session_kafka


async def _create_topic(bootstrap: str, partitions: int = 1) -> str:
    """Create a uniquely named topic and wait until the broker's metadata lists it."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, partitions, 1)])
        assert [(t[0], t[1]) for t in response.topic_errors] == [(name, 0)]
        # The controller commits the topic before the broker's metadata cache has it.
        deadline = asyncio.get_running_loop().time() + 10
        while name not in await admin.list_topics():
            assert asyncio.get_running_loop().time() < deadline, f"{name} never listed"
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
    return name


# --- against the session broker --------------------------------------------------------


@pytest.mark.kafka
async def test_idempotent_produce_is_consumed(kafka_bootstrap: str) -> None:
    topic = await _create_topic(kafka_bootstrap)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, b"frame-0001", key=b"img-42")
    finally:
        await producer.stop()
    assert (meta.topic, meta.partition, meta.offset) == (topic, 0, 0)

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
        await consumer.commit()
        committed = await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()
    assert (record.key, record.value, record.offset) == (b"img-42", b"frame-0001", 0)
    assert committed == 1


@pytest.mark.kafka
async def test_two_group_members_split_the_partitions(kafka_bootstrap: str) -> None:
    topic = await _create_topic(kafka_bootstrap, partitions=2)
    group = f"g-{topic}"
    members = [
        AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=500,
        )
        for _ in range(2)
    ]
    received: list[dict[int, list[bytes]]] = [{}, {}]
    for member in members:
        await member.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        # Members only settle into one generation while both keep polling.
        while not all(len(m.assignment()) == 1 for m in members):
            assert loop.time() < deadline, [m.assignment() for m in members]
            await asyncio.gather(*(m.getmany(timeout_ms=200) for m in members))
        assignments = [next(iter(m.assignment())).partition for m in members]
        assert sorted(assignments) == [0, 1]

        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for partition in (0, 1):
                await producer.send_and_wait(topic, f"p{partition}".encode(), partition=partition)
        finally:
            await producer.stop()

        while sum(len(v) for r in received for v in r.values()) < 2:
            assert loop.time() < deadline + 30
            batches = await asyncio.gather(*(m.getmany(timeout_ms=500) for m in members))
            for index, batch in enumerate(batches):
                for tp, records in batch.items():
                    received[index].setdefault(tp.partition, []).extend(r.value for r in records)
    finally:
        for member in members:
            await member.stop()
    for index, partition in enumerate(assignments):
        assert received[index] == {partition: [f"p{partition}".encode()]}


# --- LocalKafka on its own ports --------------------------------------------------------


@pytest.fixture
def ports() -> tuple[int, ...]:
    return free_ports(2)


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``darkroom <argv>`` in this process."""
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.kafka
@pytest.mark.slow
async def test_local_broker_lifecycle(
    tmp_path: Path,
    ports: tuple[int, ...],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)  # the CLI would use that cluster
    port, cport = ports
    state = tmp_path / "kafka"
    broker = LocalKafka(state, port, cport)

    bootstrap = await asyncio.to_thread(broker.start, 90)
    assert bootstrap == f"127.0.0.1:{port}"
    first = broker.status()
    assert first["running"] is True
    assert isinstance(first["pid"], int)
    assert recorded_ports(state) == (port, cport)
    assert "auto.create.topics.enable=false" in (state / "server.properties").read_text()
    meta_props = (state / "data" / "meta.properties").read_text()
    cluster = probe_metadata("127.0.0.1", port)
    assert cluster.brokers == (BrokerInfo(1, "127.0.0.1", port),)
    assert cluster.controller_id == 1
    assert f"cluster.id={cluster.cluster_id}\n" in meta_props

    assert await asyncio.to_thread(LocalKafka(state, port, cport).start, 10) == bootstrap
    assert broker.status()["pid"] == first["pid"]
    with pytest.raises(ConfigurationError, match="already runs with ports"):
        LocalKafka(state, free_port()).start(timeout_s=5)
    assert broker.status()["running"] is True

    # A second CLI start on the same state dir finds the running broker (ports from state).
    code, out, _ = _cli(["kafka", "start", "--state-dir", str(state)], capsys)
    assert code == 0
    assert bootstrap in out
    code, out, _ = _cli(["kafka", "status", "--state-dir", str(state)], capsys)
    assert code == 0
    assert json.loads(out) | {"external": False} == json.loads(out)
    assert json.loads(out)["pid"] == first["pid"]

    topic = await _create_topic(bootstrap)
    # auto.create.topics.enable=false: producing to an unknown topic does not create it.
    caplog.set_level(logging.CRITICAL, logger="aiokafka.cluster")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=1500)
    await producer.start()
    try:
        with pytest.raises(UnknownTopicOrPartitionError):
            await producer.send_and_wait(f"missing-{topic}", b"x")
    finally:
        await producer.stop()

    code, out, _ = _cli(["kafka", "stop", "--state-dir", str(state)], capsys)
    assert code == 0
    assert "stopped" in out
    after = broker.status()
    assert after["running"] is False
    assert after["pid"] is None
    assert not (state / "kafka.pid").exists()
    assert not bootstrap_ready(bootstrap)
    assert broker.stop() is False

    # A restart keeps the formatted storage: same cluster id, topics survive.
    await asyncio.to_thread(broker.start, 90)
    try:
        assert (state / "data" / "meta.properties").read_text() == meta_props
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            topics = await admin.list_topics()
        finally:
            await admin.close()
        assert topic in topics
        assert f"missing-{topic}" not in topics
    finally:
        assert broker.stop() is True
    assert "Kafka Server started" in (state / "server.log").read_text()


@pytest.mark.kafka
@pytest.mark.slow
def test_start_timeout_raises_broker_unavailable_and_stops(
    tmp_path: Path, ports: tuple[int, ...]
) -> None:
    broker = LocalKafka(tmp_path / "kafka", *ports)
    with pytest.raises(BrokerUnavailable, match=r"did not answer within 0\.1 s") as info:
        broker.start(timeout_s=0.1)
    assert "tail of" in str(info.value)
    assert broker.status()["running"] is False
    assert broker.pid() is None
    assert not broker.pid_file.exists()


@pytest.mark.kafka
@pytest.mark.slow
def test_broker_exiting_at_start_raises_configuration_error(
    tmp_path: Path, ports: tuple[int, ...]
) -> None:
    state = tmp_path / "kafka"
    (state / "data").mkdir(parents=True)
    # Storage formatted for another node: the broker refuses it and exits.
    (state / "data" / "meta.properties").write_text(
        "version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=7\n"
    )
    broker = LocalKafka(state, *ports)
    with pytest.raises(ConfigurationError, match="exited during start-up") as info:
        broker.start(timeout_s=60)
    assert "Stored node id 7 doesn't match previous node id 1" in str(info.value)
    assert broker.pid() is None


def test_start_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = LocalKafka(tmp_path / "kafka", port, free_port())
        with pytest.raises(ConfigurationError, match=f"port {port} .* already in use"):
            broker.start(timeout_s=5)
    assert not broker.pid_file.exists()


def test_start_without_java_raises_configuration_error(tmp_path: Path) -> None:
    broker = LocalKafka(tmp_path / "kafka", free_port(), java="/nonexistent/bin/java")
    with pytest.raises(ConfigurationError, match="no java executable"):
        broker.start(timeout_s=5)


def test_stale_pid_file_is_not_running(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    broker = LocalKafka(tmp_path, free_port())
    broker.pid_file.write_text(dead.stdout)
    status = broker.status()
    assert (status["running"], status["pid"]) == (False, None)
    assert broker.stop() is False
    assert not broker.pid_file.exists()


def test_pid_of_another_program_is_not_the_broker(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        broker = LocalKafka(tmp_path, free_port())
        broker.pid_file.write_text(f"{other.pid}\n")
        assert broker.pid() is None
        assert broker.stop() is False
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


# --- the Metadata probe -----------------------------------------------------------------


def test_probe_with_nothing_listening_raises() -> None:
    port = free_port()
    with pytest.raises(BrokerUnavailable, match=f"no Kafka broker answers at 127.0.0.1:{port}"):
        probe_metadata("127.0.0.1", port, timeout_s=1)
    assert bootstrap_ready(f"127.0.0.1:{port}") is False


@pytest.fixture
def http_server() -> Iterator[int]:
    """A server answering every connection with an HTTP error, i.e. not Kafka."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    server.close()
    thread.join(timeout=5)


def test_probe_of_a_non_kafka_server_raises(http_server: int) -> None:
    with pytest.raises(BrokerUnavailable, match="not Kafka"):
        probe_metadata("127.0.0.1", http_server, timeout_s=2)
    assert bootstrap_ready(f"127.0.0.1:{http_server}") is False


# --- the CLI ----------------------------------------------------------------------------


# --- the fixture's choice of cluster ----------------------------------------------------


def test_cluster_from_environment_is_used_as_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker-a:9092,broker-b:9092")
    monkeypatch.setenv("DARKROOM_HOME", str(tmp_path))
    with session_kafka() as bootstrap:
        assert bootstrap == "broker-a:9092,broker-b:9092"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cluster_id_starting_with_a_dash_formats(tmp_path, monkeypatch):
    """Regression: a random id like '-x…' was read by kafka-storage as an option."""
    import darkroom_dev.local.kafka as kafka_module

    monkeypatch.setattr(kafka_module, "_cluster_id", lambda: "-" + "A" * 21)
    port, controller = free_ports(2)
    broker = LocalKafka(tmp_path / "state", port=port, controller_port=controller)
    try:
        broker.start(timeout_s=90)
        assert broker.status()["running"]
    finally:
        broker.stop()
