"""A real single-node Apache Kafka 4.0 broker (KRaft, combined broker+controller) run with java.

The jars come from ``tools/jars/kafka/pom.xml`` (see :mod:`darkroom_dev.local.jars`);
no Docker is involved. One state directory holds everything of one broker::

    <state_dir>/
        server.properties   rewritten at every start (ports may change)
        data/               log.dirs; formatted once, meta.properties keeps the cluster id
        kafka.pid           pid of the running java process
        broker.log          the JVM's stdout/stderr (WARN and above, crashes)
        server.log          the broker's full INFO log (log4j2, rolled at 20 MB)

Readiness is a real Kafka Metadata request (API key 3, version 4, per the Kafka
protocol guide) answered with this broker listed and an elected controller.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darkroom_common.errors import BrokerUnavailable, ConfigurationError
from darkroom_dev.local.jars import ensure_jars, java_classpath, repo_root

DEFAULT_PORT = 9092
"""Default PLAINTEXT port of the local broker (the Kafka default)."""

HOST = "127.0.0.1"
"""The only interface the local broker listens on."""

HEAP_OPTS = ("-Xms256m", "-Xmx512m")
"""JVM heap of the local broker: small, as for KAFKA_HEAP_OPTS in a dev setup."""

_NODE_ID = 1
_METADATA_API_KEY = 3
_METADATA_VERSION = 4


def default_state_dir() -> Path:
    """Return ``<repo>/.darkroom/kafka``, the state directory of ``darkroom kafka``."""
    return repo_root() / ".darkroom" / "kafka"


@dataclass(frozen=True)
class BrokerInfo:
    """One broker as listed in a Metadata response: ``node_id`` at ``host:port``."""

    node_id: int
    host: str
    port: int


@dataclass(frozen=True)
class ClusterMetadata:
    """The cluster part of a Kafka Metadata response (v4).

    Attributes:
        cluster_id: the cluster id written by ``kafka-storage format`` (may be ``None``).
        controller_id: node id of the active controller, ``-1`` while none is elected.
        brokers: every registered broker.
    """

    cluster_id: str | None
    controller_id: int
    brokers: tuple[BrokerInfo, ...]


def _string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


class _Reader:
    """Reads the big-endian primitives of the (non-flexible) Kafka protocol from bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise BrokerUnavailable("truncated Kafka Metadata response")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value

    def string(self) -> str | None:
        length = self.take(">h")
        if length < 0:
            return None
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw.decode()


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise BrokerUnavailable("the broker closed the connection mid-response")
        chunks += chunk
    return bytes(chunks)


def probe_metadata(host: str, port: int, *, timeout_s: float = 2.0) -> ClusterMetadata:
    """Send one Kafka Metadata request (v4, no topics) and return the cluster part of the answer.

    Args:
        host, port: a broker's listener.
        timeout_s: budget in seconds for connecting and for each socket read.

    Raises:
        BrokerUnavailable: nothing listens there, the connection failed or timed out,
            or the answer is not a Kafka Metadata response.
    """
    correlation_id = 0x0DA5C0DE
    body = (
        struct.pack(">hhi", _METADATA_API_KEY, _METADATA_VERSION, correlation_id)
        + _string("darkroom-probe")
        + struct.pack(">i", 0)  # topics: an empty array asks for brokers only
        + struct.pack(">b", 0)  # allow_auto_topic_creation
    )
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            (size,) = struct.unpack(">i", _recv_exact(sock, 4))
            if not 0 < size < 1 << 20:
                raise BrokerUnavailable(f"{host}:{port} sent a {size}-byte frame; not Kafka?")
            payload = _recv_exact(sock, size)
    except OSError as exc:
        raise BrokerUnavailable(f"no Kafka broker answers at {host}:{port}: {exc}") from exc
    reader = _Reader(payload)
    if reader.take(">i") != correlation_id:
        raise BrokerUnavailable(f"{host}:{port} answered with a foreign correlation id")
    reader.take(">i")  # throttle_time_ms
    brokers = []
    for _ in range(reader.take(">i")):
        node_id = reader.take(">i")
        broker_host = reader.string() or ""
        broker_port = reader.take(">i")
        reader.string()  # rack
        brokers.append(BrokerInfo(node_id, broker_host, broker_port))
    cluster_id = reader.string()
    controller_id = reader.take(">i")
    return ClusterMetadata(cluster_id, controller_id, tuple(brokers))


def bootstrap_ready(bootstrap: str, *, timeout_s: float = 2.0) -> bool:
    """Whether the first ``host:port`` of a bootstrap list answers Metadata with a controller.

    ``bootstrap`` is a Kafka ``bootstrap.servers`` value, e.g. ``"127.0.0.1:9092,b2:9092"``.
    Never raises; an unreachable or controller-less cluster gives ``False``.
    """
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    try:
        meta = probe_metadata(host.strip("[]") or "localhost", int(port), timeout_s=timeout_s)
    except (BrokerUnavailable, ValueError):
        return False
    return bool(meta.brokers) and meta.controller_id >= 0


def recorded_ports(state_dir: Path) -> tuple[int, int] | None:
    """Return ``(port, controller_port)`` from the ``server.properties`` of a state dir, if any."""
    props = state_dir / "server.properties"
    if not props.is_file():
        return None
    for line in props.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "listeners":
            ports = dict(
                (name, int(addr.rpartition(":")[2]))
                for name, _, addr in (item.partition("://") for item in value.split(","))
            )
            if "PLAINTEXT" in ports and "CONTROLLER" in ports:
                return ports["PLAINTEXT"], ports["CONTROLLER"]
    return None


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class LocalKafka:
    """A single-node KRaft Kafka broker (``process.roles=broker,controller``) in ``state_dir``.

    Args:
        state_dir: folder holding config, data, pid file and logs (created on start).
        port: PLAINTEXT listener on 127.0.0.1; clients bootstrap from ``127.0.0.1:<port>``.
        controller_port: CONTROLLER listener (the static KRaft voter); ``port + 1`` if ``None``.
        auto_create_topics: ``auto.create.topics.enable``; off because Darkroom
            creates every topic explicitly from its topic registry.
        java: the java executable; ``$JAVA_HOME/bin/java`` or ``java`` on PATH if ``None``.
        node_id: the KRaft ``node.id`` (1 for the single node).
        voters: ``controller.quorum.voters`` (``"id@host:port,..."``); ``None`` means
            this node alone (``"<node_id>@127.0.0.1:<controller_port>"``).
        cluster_id: the id ``kafka-storage format`` writes on first start; every node
            of one cluster needs the same. ``None`` draws a random one.
        extra_config: ``server.properties`` entries that override or add to the
            single-node defaults (e.g. replication factors of a multi-node cluster).
        heap_opts: the JVM heap flags; :data:`HEAP_OPTS` if ``None``.

    The broker outlives this object and the Python process: it runs in its own
    session and is found again through ``kafka.pid``.
    """

    def __init__(
        self,
        state_dir: Path,
        port: int = DEFAULT_PORT,
        controller_port: int | None = None,
        *,
        auto_create_topics: bool = False,
        java: str | None = None,
        node_id: int = _NODE_ID,
        voters: str | None = None,
        cluster_id: str | None = None,
        extra_config: Mapping[str, str] | None = None,
        heap_opts: tuple[str, ...] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.port = port
        self.controller_port = controller_port if controller_port is not None else port + 1
        self.auto_create_topics = auto_create_topics
        self.java = java
        self.node_id = node_id
        self.voters = voters or f"{node_id}@{HOST}:{self.controller_port}"
        self.cluster_id = cluster_id
        self.extra_config = dict(extra_config or {})
        self.heap_opts = heap_opts if heap_opts is not None else HEAP_OPTS
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The ``bootstrap.servers`` value of this broker: ``"127.0.0.1:<port>"``."""
        return f"{HOST}:{self.port}"

    @property
    def pid_file(self) -> Path:
        """``<state_dir>/kafka.pid``."""
        return self.state_dir / "kafka.pid"

    @property
    def log_path(self) -> Path:
        """``<state_dir>/broker.log``: the JVM's stdout and stderr."""
        return self.state_dir / "broker.log"

    @property
    def server_log_path(self) -> Path:
        """``<state_dir>/server.log``: the broker's INFO log (log4j2)."""
        return self.state_dir / "server.log"

    @property
    def data_dir(self) -> Path:
        """``<state_dir>/data``: the broker's ``log.dirs``."""
        return self.state_dir / "data"

    def pid(self) -> int | None:
        """Return the pid of this state dir's live broker process, or ``None``.

        A stale pid file (dead process, or a pid reused by another program) counts as none.
        """
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self._alive(pid) else None

    def _alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        proc = Path(f"/proc/{pid}")
        if proc.is_dir():
            stat = (proc / "stat").read_text()
            if stat.rpartition(")")[2].split()[0] == "Z":
                return False
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            return b"kafka.Kafka" in cmdline and str(self.state_dir).encode() in b" ".join(cmdline)
        return True

    def status(self) -> dict[str, Any]:
        """Describe this broker as a JSON-ready dict.

        Keys: ``running`` (process alive and Metadata answered with a controller),
        ``pid`` (int or ``None``), ``bootstrap``, ``state_dir``, ``log`` (broker.log),
        ``server_log``.
        """
        pid = self.pid()
        return {
            "running": pid is not None and bootstrap_ready(self.bootstrap),
            "pid": pid,
            "bootstrap": self.bootstrap,
            "state_dir": str(self.state_dir),
            "log": str(self.log_path),
            "server_log": str(self.server_log_path),
        }

    def _java(self) -> str:
        candidates = [self.java] if self.java else []
        if not self.java and (home := os.environ.get("JAVA_HOME")):
            candidates.append(str(Path(home) / "bin" / "java"))
        if not self.java:
            candidates.append("java")
        for candidate in candidates:
            if found := shutil.which(candidate):
                return found
        raise ConfigurationError(
            f"no java executable found (tried {', '.join(candidates)}); install Java 17+"
        )

    def _write_config(self) -> Path:
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters,
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # A restarted controller keeps the previous incarnation's registration
            # alive for a whole session timeout (9 s by default) before the broker can
            # register again; a short one makes restarts quick.
            "broker.session.timeout.ms": "4000",
            "broker.heartbeat.interval.ms": "500",
            "auto.create.topics.enable": str(self.auto_create_topics).lower(),
            **self.extra_config,
        }
        path = self.state_dir / "server.properties"
        lines = ["# Written by darkroom_dev.local.kafka at every start; edits are lost."]
        lines += [f"{key}={value}" for key, value in props.items()]
        path.write_text("\n".join(lines) + "\n")
        return path

    def _jvm(self, java: str, classpath: str) -> list[str]:
        log4j = repo_root() / "tools" / "jars" / "kafka" / "log4j2.yaml"
        return [
            java,
            *self.heap_opts,
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            # Kafka logs its own shutdown; log4j2's hook would close the appenders first.
            "-Dlog4j2.shutdownHookEnabled=false",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.state_dir}",
            "-cp",
            classpath,
        ]

    def _format(self, java: str, classpath: str, config: Path) -> None:
        if (self.data_dir / "meta.properties").is_file():
            return
        # Static quorum (controller.quorum.voters) forbids --standalone; a plain
        # format writes meta.properties and the bootstrap checkpoint.
        proc = subprocess.run(
            [
                *self._jvm(java, classpath),
                "kafka.tools.StorageTool",
                "format",
                # One argument: an id may start with "-", which argparse takes for an option.
                f"--cluster-id={self.cluster_id or _cluster_id()}",
                "--config",
                str(config),
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise ConfigurationError(
                f"kafka-storage format failed in {self.data_dir}: "
                f"{(proc.stdout + proc.stderr).strip()[-2000:]}"
            )

    def _failure_text(self) -> str:
        return (
            f"--- tail of {self.log_path} ---\n{_tail(self.log_path, 30)}\n"
            f"--- tail of {self.server_log_path} ---\n{_tail(self.server_log_path, 30)}"
        )

    def start(self, timeout_s: float = 60.0, *, wait: bool = True) -> str:
        """Start the broker (or find it running) and return its bootstrap ``"127.0.0.1:<port>"``.

        Idempotent: if the pid file names a live broker, this only waits until it
        answers (its settings are not changed). Fetches the jars on first use and
        formats the storage once. With ``wait=False`` it returns right after
        launching: a node of a multi-node quorum cannot answer with a controller
        before a majority of the voters runs (see :mod:`darkroom_dev.local.cluster`).

        Raises:
            ConfigurationError: java or Maven is missing, the port is taken by another
                program, formatting failed, or the broker exited during start-up
                (the message carries the tail of its logs), or the state dir's broker
                already runs on other ports.
            BrokerUnavailable: no Metadata answer within ``timeout_s`` seconds; a
                process launched by this call is stopped; the message carries the
                tail of the logs.
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        launched = self.pid() is None
        if launched:
            self.pid_file.unlink(missing_ok=True)
            self._launch()
        elif (running := recorded_ports(self.state_dir)) != (self.port, self.controller_port):
            raise ConfigurationError(
                f"the Kafka broker in {self.state_dir} already runs with ports {running}, "
                f"not ({self.port}, {self.controller_port}); stop it first"
            )
        if not wait:
            return self.bootstrap
        deadline = time.monotonic() + timeout_s
        while True:
            pid = self.pid()
            if pid is None:
                raise ConfigurationError(
                    f"the Kafka broker in {self.state_dir} exited during start-up\n"
                    + self._failure_text()
                )
            if bootstrap_ready(self.bootstrap, timeout_s=1.0):
                return self.bootstrap
            if time.monotonic() >= deadline:
                message = (
                    f"the Kafka broker at {self.bootstrap} did not answer within "
                    f"{timeout_s:g} s\n" + self._failure_text()
                )
                if launched:
                    self.stop()
                raise BrokerUnavailable(message)
            time.sleep(0.2)

    def _launch(self) -> None:
        java = self._java()
        for port in (self.port, self.controller_port):
            if _port_open(port):
                raise ConfigurationError(
                    f"port {port} on {HOST} is already in use by another program; "
                    "choose another port for the local Kafka broker"
                )
        classpath = java_classpath(ensure_jars("kafka"))
        config = self._write_config()
        self._format(java, classpath, config)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [*self._jvm(java, classpath), "kafka.Kafka", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{self._proc.pid}\n")

    def kill(self) -> bool:
        """SIGKILL the broker's process group at once (no controlled shutdown) and reap it.

        Fault injection: the data dir is left as a crash leaves it. Returns ``True``
        if a running broker was killed, ``False`` if none was running; the pid file
        is removed either way.
        """
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal_group(pid, signal.SIGKILL)
        self._reap(pid, 10)
        return True

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker: SIGTERM (controlled shutdown), then SIGKILL after ``timeout_s`` s.

        Returns:
            ``True`` if a running broker was stopped, ``False`` if none was running.
            The pid file is removed either way.
        """
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal_group(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout_s):
            _signal_group(pid, signal.SIGKILL)
        self._reap(pid, 10)
        return True

    def _wait_gone(self, pid: int, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` s for ``pid`` to exit; whether it did."""
        deadline = time.monotonic() + timeout_s
        while self._alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self._alive(pid)

    def _reap(self, pid: int, timeout_s: float) -> None:
        """Wait for the signalled ``pid`` to exit, collect it and remove the pid file."""
        self._wait_gone(pid, timeout_s)
        if self._proc is not None and self._proc.pid == pid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=1)
            self._proc = None
        self.pid_file.unlink(missing_ok=True)


def free_ports(count: int) -> tuple[int, ...]:
    """Return ``count`` distinct TCP ports on 127.0.0.1 that nothing listens on right now.

    The ports are only reserved while this function runs; another program may take
    one before the caller binds it (good enough for tests).
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(int(sock.getsockname()[1]))
    return tuple(ports)


def free_port() -> int:
    """Return one TCP port on 127.0.0.1 that nothing listens on right now (see :func:`free_ports`)."""
    return free_ports(1)[0]


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # The broker leads its own session (start_new_session), so its group id is its pid.
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (as ``random-uuid``)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
