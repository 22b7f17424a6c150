"""Run S3Proxy (https://github.com/gaul/s3proxy) as a local S3-compatible server.

S3Proxy serves the S3 API over a folder (jclouds ``filesystem`` provider) and
checks AWS SigV2/SigV4 signatures, including presigned URLs, so the S3 backend
is tested against a real server that refuses bad signatures. The jars come
from Maven Central through ``tools/jars/s3proxy/pom.xml``
(:func:`~darkroom_dev.local.jars.ensure_jars`).

State folder layout::

    s3proxy.properties   server settings (endpoint, credentials, storage folder)
    logback.xml          log level INFO (the jar ships none, so logback logs DEBUG)
    s3proxy.log          the server's stdout and stderr
    s3proxy.pid          the running server's process id
    data/                one folder per bucket

Command line: ``python -m darkroom_dev.local.s3proxy start|stop|status``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from darkroom_common.errors import ConfigurationError, PermanentError
from darkroom_dev.local.jars import ensure_jars, java_classpath, repo_root

MAIN_CLASS = "org.gaul.s3proxy.Main"
DEFAULT_PORT = 8333
DEFAULT_ACCESS_KEY = "darkroom"
DEFAULT_SECRET_KEY = "darkroom-local-secret"  # local development only, never a real secret

_LOGBACK = """<configuration>
  <appender name="OUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level %logger{24} - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="OUT"/></root>
</configuration>
"""


class LocalServerError(PermanentError):
    """A local development server could not be started or stopped."""

    default_reason = "local_server_failed"


@dataclass(frozen=True, slots=True)
class S3ProxyStatus:
    """State of a :class:`LocalS3Proxy`.

    Attributes:
        running: the recorded process is alive and is this state folder's S3Proxy.
        pid: its process id, or ``None``.
        endpoint_url: ``http://127.0.0.1:<port>``.
        log_path: the server's log file.
    """

    running: bool
    pid: int | None
    endpoint_url: str
    log_path: Path


class LocalS3Proxy:
    """A small process manager for one S3Proxy server and its state folder.

    Args:
        state_dir: folder for settings, log, pid file and bucket data (created).
        port: TCP port on 127.0.0.1.
        access_key: the only accepted access key id.
        secret_key: its secret; requests must be signed with it.
        java: the ``java`` executable (Java 17 or newer).
        jars_dir: folder of the S3Proxy jars; default :func:`ensure_jars` ``("s3proxy")``.
        heap: maximum JVM heap, e.g. ``"512m"``.
    """

    def __init__(
        self,
        state_dir: Path,
        port: int = DEFAULT_PORT,
        access_key: str = DEFAULT_ACCESS_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        *,
        java: str = "java",
        jars_dir: Path | None = None,
        heap: str = "512m",
    ) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.port = port
        self.access_key = access_key
        self.secret_key = secret_key
        self.java = java
        self.jars_dir = jars_dir
        self.heap = heap
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``, the S3 endpoint clients use."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def properties_path(self) -> Path:
        """The ``s3proxy.properties`` file the server reads."""
        return self.state_dir / "s3proxy.properties"

    @property
    def log_path(self) -> Path:
        """The server's combined stdout/stderr."""
        return self.state_dir / "s3proxy.log"

    @property
    def pid_path(self) -> Path:
        """The file holding the running server's pid."""
        return self.state_dir / "s3proxy.pid"

    @property
    def data_dir(self) -> Path:
        """Where buckets are stored, one folder each."""
        return self.state_dir / "data"

    def write_config(self) -> None:
        """Write ``s3proxy.properties`` and ``logback.xml`` into the state folder."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "tmp").mkdir(exist_ok=True)
        lines = [
            f"s3proxy.endpoint={self.endpoint_url}",
            # Verify an AWS Signature Version 4 (header or presigned query) on every
            # request; the legacy V2 scheme is refused, as AWS refuses it in new regions.
            "s3proxy.authorization=aws-v4",
            f"s3proxy.identity={self.access_key}",
            f"s3proxy.credential={self.secret_key}",
            # s3proxy.virtual-host stays unset: path-style addressing only.
            "jclouds.provider=filesystem",
            f"jclouds.filesystem.basedir={self.data_dir}",
            "jclouds.identity=local",
            "jclouds.credential=local",
        ]
        self.properties_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        (self.state_dir / "logback.xml").write_text(_LOGBACK, encoding="utf-8")

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _is_ours(self, pid: int) -> bool:
        """Whether ``pid`` is alive and is S3Proxy on this state folder (not a recycled pid)."""
        if self._proc is not None and self._proc.pid == pid:
            # Our own child: between fork and exec its cmdline is still Python's.
            return self._proc.poll() is None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            return False
        except OSError:
            # No procfs: fall back to "some process has this pid".
            try:
                os.kill(pid, 0)
            except OSError:
                return False
            return True
        args = [a.decode(errors="replace") for a in cmdline]
        return MAIN_CLASS in args and str(self.properties_path) in args

    def status(self) -> S3ProxyStatus:
        """Report whether this state folder's server is running."""
        pid = self._read_pid()
        running = pid is not None and self._is_ours(pid)
        return S3ProxyStatus(running, pid if running else None, self.endpoint_url, self.log_path)

    def _answers(self) -> bool:
        try:
            resp = httpx.get(self.endpoint_url + "/", timeout=1.0)
        except httpx.HTTPError:
            return False
        # Any S3 answer counts (an unsigned request gets 403 AccessDenied).
        return "x-amz-request-id" in resp.headers

    def _log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def start(self, *, timeout_s: float = 60.0) -> S3ProxyStatus:
        """Start the server detached (its own session) unless it runs; wait until it answers.

        Returns:
            the status of the running server.

        Raises:
            ConfigurationError: Java or Maven is missing, or the jars cannot be fetched.
            LocalServerError: the port is taken by another program, the server
                exits early or does not answer within ``timeout_s`` seconds (the
                message ends with the log's tail).
        """
        current = self.status()
        if current.running:
            self._wait_ready(current.pid, timeout_s)
            return current
        java = shutil.which(self.java)
        if java is None:
            raise ConfigurationError(f"{self.java!r} not found; S3Proxy needs Java 17 or newer")
        if _port_open(self.port):
            raise LocalServerError(
                f"port {self.port} is already in use; pick another port for S3Proxy"
            )
        jars = self.jars_dir or ensure_jars("s3proxy")
        self.write_config()
        argv = [
            java,
            f"-Xmx{self.heap}",
            f"-Dlogback.configurationFile={self.state_dir / 'logback.xml'}",
            f"-Djava.io.tmpdir={self.state_dir / 'tmp'}",
            "-cp",
            java_classpath(jars),
            MAIN_CLASS,
            "--properties",
            str(self.properties_path),
        ]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                argv,
                cwd=self.state_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_path.write_text(f"{self._proc.pid}\n")
        try:
            self._wait_ready(self._proc.pid, timeout_s)
        except BaseException:
            self.stop()
            raise
        return self.status()

    def _wait_ready(self, pid: int | None, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if pid is None or not self._is_ours(pid):
                raise LocalServerError(
                    f"S3Proxy exited during start-up; log {self.log_path}:\n{self._log_tail()}"
                )
            if self._answers():
                return
            time.sleep(0.1)
        raise LocalServerError(
            f"S3Proxy did not answer on {self.endpoint_url} within {timeout_s:.0f} s; "
            f"log {self.log_path}:\n{self._log_tail()}"
        )

    def stop(self, *, timeout_s: float = 15.0) -> bool:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout_s``); return whether it ran.

        Raises:
            LocalServerError: the process survived SIGKILL.
        """
        pid = self._read_pid()
        was_running = pid is not None and self._is_ours(pid)
        if pid is not None and was_running:
            for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                if self._wait_gone(pid, wait):
                    break
            else:
                raise LocalServerError(f"S3Proxy (pid {pid}) did not exit after SIGKILL")
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=1.0)
            self._proc = None
        self.pid_path.unlink(missing_ok=True)
        return was_running

    def _wait_gone(self, pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.pid == pid:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=0.1)
            if not self._is_ours(pid):
                return True
            time.sleep(0.1)
        return False


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def main(argv: list[str] | None = None) -> int:
    """``python -m darkroom_dev.local.s3proxy start|stop|status``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="darkroom-s3proxy", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="default <repo>/.darkroom/s3proxy"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--access-key", default=DEFAULT_ACCESS_KEY)
    parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    args = parser.parse_args(argv)
    state_dir = args.state_dir or repo_root() / ".darkroom" / "s3proxy"
    proxy = LocalS3Proxy(state_dir, args.port, args.access_key, args.secret_key)
    if args.action == "start":
        st = proxy.start()
        print(f"S3Proxy running (pid {st.pid}) at {st.endpoint_url}; log {st.log_path}")
    elif args.action == "stop":
        print("S3Proxy stopped" if proxy.stop() else "S3Proxy was not running")
    else:
        st = proxy.status()
        print(f"running pid {st.pid} at {st.endpoint_url}" if st.running else "not running")
        return 0 if st.running else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
