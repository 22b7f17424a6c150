"""One long-running ExifTool process, shared and thread-safe.

ExifTool is started once in ``-stay_open`` mode (``exiftool -stay_open True -@ -``) and
reads its arguments from stdin, one per line; each request ends with
``-execute<N>`` and its answer on stdout ends with the line ``{ready<N>}``
(ExifTool documentation, option ``-stay_open``). Starting Perl and ExifTool costs about
0.2 s, a request on a running process about a millisecond.

The executable is looked up in this order: the environment variable ``DARKROOM_EXIFTOOL``,
``exiftool`` on ``PATH``, then ``<repo>/.tools/exiftool/node_modules/exiftool-vendored.pl/bin/exiftool``
as installed by ``tools/bootstrap/exiftool.sh``.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import shutil
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

_VENDORED = Path(".tools/exiftool/node_modules/exiftool-vendored.pl/bin/exiftool")


class ExifToolError(RuntimeError):
    """ExifTool could not answer a request (base class)."""


class ExifToolUnavailable(ExifToolError):
    """No ExifTool executable was found, or it would not start."""


class ExifToolDied(ExifToolError):
    """The process exited during a request (after one automatic restart, if it persists)."""


class ExifToolTimeout(ExifToolError):
    """A request took longer than the timeout; the process was killed and will restart."""


def _repo_roots() -> list[Path]:
    roots: list[Path] = []
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for d in (start, *start.parents):
            if (d / "tools" / "bootstrap").is_dir() and d not in roots:
                roots.append(d)
                break
    return roots


def find_exiftool() -> Path | None:
    """Return the ExifTool executable to use (see the module docstring), or None."""
    env = os.environ.get("DARKROOM_EXIFTOOL")
    if env:
        return Path(env)
    on_path = shutil.which("exiftool")
    if on_path:
        return Path(on_path)
    for root in _repo_roots():
        candidate = root / _VENDORED
        if candidate.is_file():
            return candidate
    return None


class ExifTool:
    """A persistent ``exiftool -stay_open`` process.

    ``executable`` defaults to :func:`find_exiftool`; ``timeout`` is the limit in seconds
    for one request. Every request gets ``common_args`` (default ``-json -n``: JSON
    output, numeric values without print conversion). Safe to share between threads
    (one request at a time); the process starts on first use and is restarted when it has
    died or timed out. Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        executable: str | Path | None = None,
        *,
        timeout: float = 30.0,
        common_args: tuple[str, ...] = ("-json", "-n"),
    ) -> None:
        self._executable = Path(executable) if executable else find_exiftool()
        self.timeout = timeout
        self._common_args = common_args
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._counter = 0
        self.starts = 0

    @property
    def executable(self) -> Path | None:
        """The ExifTool script this instance runs (None when none was found)."""
        return self._executable

    @property
    def pid(self) -> int | None:
        """Process id of the running ExifTool, or None when not running."""
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    def __enter__(self) -> ExifTool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _start(self) -> subprocess.Popen[bytes]:
        if self._executable is None or not self._executable.is_file():
            raise ExifToolUnavailable(
                "ExifTool not found: set DARKROOM_EXIFTOOL, put exiftool on PATH, "
                "or run tools/bootstrap/exiftool.sh"
            )
        cmd = [str(self._executable), "-stay_open", "True", "-@", "-"]
        cmd += ["-common_args", *self._common_args]
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise ExifToolUnavailable(f"cannot start {self._executable}: {exc}") from exc
        self.starts += 1
        return proc

    def execute(self, *args: str) -> tuple[str, str]:
        """Run one ExifTool command and return its ``(stdout, stderr)`` text.

        Raises :class:`ExifToolUnavailable`, :class:`ExifToolTimeout`, or
        :class:`ExifToolDied` when the process dies twice in a row; a process found dead
        is restarted, and a request it dropped is sent once more. Arguments must not contain newlines (ValueError).
        """
        if any("\n" in a or "\r" in a for a in args):
            raise ValueError("ExifTool arguments cannot contain line breaks")
        with self._lock:
            try:
                return self._request(args)
            except ExifToolDied:
                # The process died between requests (killed, crashed): one fresh start.
                return self._request(args)

    def _request(self, args: tuple[str, ...]) -> tuple[str, str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        self._counter += 1
        proc = self._proc
        assert proc.stdin is not None
        # -execute{n} ends the answer on stdout with {ready{n}}; -echo4 writes {done{n}} to
        # stderr once the command is processed, after its warnings and errors.
        done = f"{{done{self._counter}}}"
        request = "\n".join([*args, "-echo4", done, f"-execute{self._counter}", ""]).encode()
        try:
            proc.stdin.write(request)
            proc.stdin.flush()
            return self._read(proc, f"{{ready{self._counter}}}".encode(), done.encode())
        except BrokenPipeError as exc:
            self._kill()
            raise ExifToolDied("ExifTool exited before the request") from exc
        except ExifToolError:
            self._kill()
            raise

    def _read(
        self, proc: subprocess.Popen[bytes], sentinel: bytes, err_sentinel: bytes
    ) -> tuple[str, str]:
        """Read stdout up to ``sentinel`` and stderr up to ``err_sentinel`` (both removed)."""
        assert proc.stdout is not None
        assert proc.stderr is not None
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + self.timeout
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ, out)
            sel.register(proc.stderr, selectors.EVENT_READ, err)
            while not (_ends_with(out, sentinel) and _ends_with(err, err_sentinel)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ExifToolTimeout(f"ExifTool gave no answer within {self.timeout} s")
                for key, _ in sel.select(remaining):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        raise ExifToolDied("ExifTool exited during the request")
                    key.data.extend(chunk)
        del out[out.rfind(sentinel) :]
        del err[err.rfind(err_sentinel) :]
        return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def read_tags(
        self, path: Path, tags: tuple[str, ...] = (), *, grouped: bool = False
    ) -> dict[str, Any]:
        """Return ExifTool's JSON object for one file (``-json -n``), limited to ``tags``.

        Keys are tag names (``Make``, ``GPSLatitude``...), values numbers or strings as
        ExifTool gives them; ``Error``/``Warning`` keys carry ExifTool's complaints.
        With ``grouped`` the request adds ``-G``: keys are prefixed by the family 0 group
        (``EXIF:DateTimeOriginal``, ``IPTC:DateCreated``, ``XMP:DateCreated``,
        ``ExifTool:Warning``), one key per group that holds the tag, and ``tags`` may be
        group-qualified (``XMP-photoshop:DateCreated``, ``EXIF:all``).
        Raises the :class:`ExifToolError` family when ExifTool cannot answer.
        """
        args = [*(["-G"] if grouped else []), *(f"-{t}" for t in tags)]
        # An absolute path cannot be mistaken for an option (a name starting with "-").
        stdout, stderr = self.execute(*args, str(Path(path).absolute()))
        try:
            data = json.loads(stdout) if stdout.strip() else []
        except json.JSONDecodeError as exc:
            raise ExifToolError(f"ExifTool returned invalid JSON: {exc}") from exc
        result: dict[str, Any] = data[0] if data else {}
        if not data and stderr.strip():
            result = {"Error": stderr.strip().splitlines()[0]}
        return result

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
                if stream:
                    stream.close()
        self._proc = None

    def close(self) -> None:
        """Ask ExifTool to exit (``-stay_open False``); kill it if it does not in 5 s."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            if proc.poll() is None and proc.stdin is not None:
                try:
                    proc.stdin.write(b"-stay_open\nFalse\n")
                    proc.stdin.flush()
                    proc.wait(timeout=5)
                except (BrokenPipeError, subprocess.TimeoutExpired):
                    pass
            self._kill()


_shared: ExifTool | None = None
_shared_lock = threading.Lock()


def shared_exiftool() -> ExifTool:
    """The process-wide :class:`ExifTool`, created on first use and closed at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ExifTool()
            atexit.register(_shared.close)
        return _shared


def _ends_with(data: bytearray, sentinel: bytes) -> bool:
    """Whether ``data`` ends with ``sentinel`` followed by nothing but white space."""
    idx = data.rfind(sentinel)
    return idx >= 0 and data[idx + len(sentinel) :].strip() == b""
