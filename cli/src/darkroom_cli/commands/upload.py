"""``darkroom upload PATH… --gallery G``: send originals to the upload API, with a progress bar.

Each file streams from disk (a multipart body generated chunk by chunk, with a
Content-Length, never read whole) to ``POST /v1/galleries/{G}/uploads``.
Folders are walked (files in name order). For each file one line is printed:
``<path>  <job_id>  <job_url>`` (or a JSON object with ``--json``).

Options: ``--api URL`` (default ``$DARKROOM_UPLOAD_API`` or
``http://127.0.0.1:8080``), ``--api-key KEY`` (default ``$DARKROOM_API_KEY``),
``--profile P``, ``--no-progress``.

Exit status: 0 when every file was accepted; 1 when the API refused one
(its reason and message are printed); 2 when a path does not exist or the API
cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

DEFAULT_API = "http://127.0.0.1:8080"
CHUNK_BYTES = 256 * 1024


def register(subparsers: Any) -> None:
    """Add the ``upload`` subcommand."""
    p = subparsers.add_parser("upload", help="upload originals to a gallery through the upload API")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    p.add_argument("--gallery", required=True, help="gallery id")
    p.add_argument("--api", default=None, help=f"upload API base URL (default {DEFAULT_API})")
    p.add_argument("--api-key", default=None, help="API key (default $DARKROOM_API_KEY)")
    p.add_argument("--profile", default=None, help="variant profile")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per file")
    p.set_defaults(func=run_upload)


def files_of(paths: list[Path]) -> list[Path]:
    """Expand folders into their files (recursively, sorted); keep files as given."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file())
        else:
            out.append(path)
    return out


class MultipartFile:
    """A ``multipart/form-data`` body with one ``file`` part, generated from disk chunk by chunk.

    Args:
        path: the file to send.
        on_chunk: called with the number of file bytes each time a chunk is sent.
    """

    def __init__(self, path: Path, on_chunk: Callable[[int], None]) -> None:
        self.path = path
        self.on_chunk = on_chunk
        self.boundary = uuid.uuid4().hex
        name = path.name.replace('"', "%22").replace("\r", "").replace("\n", "")
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self.head = (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.size = path.stat().st_size

    @property
    def headers(self) -> dict[str, str]:
        """Content-Type (with the boundary) and Content-Length of the body."""
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(len(self.head) + self.size + len(self.tail)),
        }

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        with self.path.open("rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                self.on_chunk(len(chunk))
                yield chunk
        yield self.tail


def run_upload(args: argparse.Namespace) -> int:
    """Upload every file; print one line per file; see the module docstring for exit codes."""
    import httpx
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    files = files_of(args.paths)
    missing = [p for p in files if not p.is_file()]
    for p in missing:
        print(f"darkroom: no such file: {p}", file=sys.stderr)
    if missing:
        return 2
    api = (args.api or os.environ.get("DARKROOM_UPLOAD_API") or DEFAULT_API).rstrip("/")
    key = args.api_key or os.environ.get("DARKROOM_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    params = {"profile": args.profile} if args.profile else {}
    url = f"{api}/v1/galleries/{args.gallery}/uploads"
    status = 0
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=args.no_progress,
    )
    with progress, httpx.Client(timeout=args.timeout) as client:
        total = progress.add_task(
            f"{len(files)} file(s)", total=sum(p.stat().st_size for p in files)
        )
        for path in files:
            task = progress.add_task(path.name, total=path.stat().st_size)

            def advance(n: int, task: Any = task) -> None:
                progress.advance(task, n)
                progress.advance(total, n)

            body = MultipartFile(path, advance)
            try:
                response = client.post(
                    url, content=iter(body), headers={**headers, **body.headers}, params=params
                )
            except httpx.HTTPError as exc:
                progress.stop()
                print(f"darkroom: cannot reach the upload API at {api}: {exc}", file=sys.stderr)
                return 2
            progress.remove_task(task)
            if response.status_code == 202:
                accepted = response.json()
                if args.json:
                    print(json.dumps({"path": str(path), "ok": True, **accepted}))
                else:
                    print(f"{path}\t{accepted['job_id']}\t{accepted['job_url']}")
                continue
            status = 1
            reason, message = _refusal(response)
            if args.json:
                print(json.dumps({"path": str(path), "ok": False, "status": response.status_code,
                                  "reason": reason, "message": message}))  # fmt: skip
            print(f"darkroom: {path}: refused ({response.status_code} {reason}): {message}",
                  file=sys.stderr)  # fmt: skip
    return status


def _refusal(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
        return str(body["reason"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}", response.text[:200] or response.reason_phrase
