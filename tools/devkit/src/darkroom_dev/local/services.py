"""Run the four pipeline services as separate local processes (``python -m <service>``).

Used by ``darkroom run`` and the end-to-end tests. Each service gets its own
log file, a free web port and the environment given; stopping sends SIGTERM
(a worker finishes the events in hand, commits and leaves its group) and SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVICES: dict[str, str] = {
    "ingest": "darkroom_ingest",
    "raw-provider": "darkroom_raw_provider",
    "variants": "darkroom_variants",
    "catalog": "darkroom_catalog",
}
"""Stage name → the module ``python -m`` runs (the four pipeline workers)."""

PROCESSES: dict[str, tuple[str, str]] = {
    **{
        name: (module, f"DARKROOM_{name.upper().replace('-', '_')}_WEB_PORT")
        for name, module in SERVICES.items()
    },
    "upload-api": ("darkroom_ingest.api", "DARKROOM_INGEST_API_PORT"),
}
"""Every process ``ServiceGroup`` can start → (module, the variable naming its HTTP port)."""

_FAUST_ENV = ("BROKER_URL", "APP_DATADIR", "WEB_PORT", "STORE", "BROKER")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServiceProcess:
    """One running service: its name, process, log file and web port."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    web_port: int

    def tail(self, lines: int = 30) -> str:
        """Return the last ``lines`` lines of the service's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ok(self, url: str, deadline: float) -> None:
        """Poll ``url`` (a page this process serves) until it answers 200.

        Args:
            deadline: a ``time.monotonic()`` instant, so several waits can share one budget.

        Raises:
            RuntimeError: the process exited, or ``url`` did not answer 200 by ``deadline``;
                the message ends with the process's log tail.
        """
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited ({self.process.returncode}):\n{self.tail()}"
                )
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not answer 200 on {url} in time:\n{self.tail()}")


@dataclass
class ServiceGroup:
    """Start, watch and stop a set of local service processes.

    Args:
        env: environment for every service (settings such as KAFKA_BOOTSTRAP_SERVERS).
        log_dir: where ``<service>[-N].log`` files go.
    """

    env: Mapping[str, str]
    log_dir: Path
    processes: list[ServiceProcess] = field(default_factory=list)

    def start(self, name: str, *, extra_env: Mapping[str, str] | None = None) -> ServiceProcess:
        """Start one more process ``name`` of :data:`PROCESSES` (workers of one stage share a consumer group)."""
        module, port_variable = PROCESSES[name]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        n = sum(p.name == name for p in self.processes)
        log_path = self.log_dir / (f"{name}.log" if n == 0 else f"{name}-{n + 1}.log")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in _FAUST_ENV}
        env.update(self.env)
        env[port_variable] = str(port)
        env.update(extra_env or {})
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", module],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        sp = ServiceProcess(name, proc, log_path, port)
        self.processes.append(sp)
        return sp

    def start_all(self, names: Iterable[str] = SERVICES) -> None:
        """Start one process of each service in ``names``."""
        for name in names:
            self.start(name)

    def exited(self) -> list[ServiceProcess]:
        """Return the processes that have exited (normally none while running)."""
        return [p for p in self.processes if p.process.poll() is not None]

    def kill(self, sp: ServiceProcess) -> None:
        """SIGKILL one process at once (fault injection), without a clean shutdown."""
        os.killpg(sp.process.pid, signal.SIGKILL)
        sp.process.wait(10)

    def stop(self, *, grace_s: float = 20.0) -> None:
        """Stop every process: SIGTERM, then SIGKILL those still running after ``grace_s``."""
        for p in self.processes:
            if p.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for p in self.processes:
            try:
                p.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.process.pid, signal.SIGKILL)
                p.process.wait(10)
