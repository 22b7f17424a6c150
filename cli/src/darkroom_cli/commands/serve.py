"""``darkroom serve [--data-dir DIR]``: the whole local stack, kept running until interrupted.

Starts the local broker (unless KAFKA_BOOTSTRAP_SERVERS names a cluster),
creates the topics, starts the four pipeline services and the upload API as
separate processes on the filesystem store in DIR, waits until both HTTP APIs
answer, then prints one JSON line: ``upload_api`` and ``catalog_api`` (base
URLs) and ``api_key`` (an admin key generated once for DIR and kept in
``DIR/api-keys.json``, mode 0600). Ctrl-C (or SIGTERM) stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Any

from darkroom_cli.commands import dev_tools_missing

READY_TIMEOUT_S = 120.0


def register(subparsers: Any) -> None:
    """Add ``serve``."""
    p = subparsers.add_parser(
        "serve",
        help="run the whole local stack (broker, services, APIs) until interrupted",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="objects, state, logs, keys (default .darkroom/serve)",
    )
    p.set_defaults(func=_serve)


def admin_key(data_dir: Path) -> tuple[str, Path]:
    """Return the admin key of ``data_dir`` and its keys file, creating both once (mode 0600)."""
    path = data_dir / "api-keys.json"
    if path.is_file():
        for entry in json.loads(path.read_text()):
            if "admin" in entry.get("scopes", []):
                return str(entry["key"]), path
    key = secrets.token_urlsafe(32)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump([{"name": "serve-admin", "key": key, "scopes": ["admin"]}], f)
    return key, path


def _serve(args: argparse.Namespace) -> int:
    try:
        from darkroom_dev.local.jars import repo_root
        from darkroom_dev.local.kafka import LocalKafka, default_state_dir
        from darkroom_dev.local.services import ServiceGroup
    except ModuleNotFoundError as exc:
        return dev_tools_missing("darkroom serve", exc)
    import asyncio

    from darkroom_common.errors import DarkroomError
    from darkroom_common.settings import DarkroomSettings, load_settings
    from darkroom_common.topics import create_topics, settings_layouts

    data_dir = (args.data_dir or repo_root() / ".darkroom" / "serve").absolute()
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    broker = None if external else LocalKafka(default_state_dir())
    started_broker = broker is not None and broker.pid() is None
    group: ServiceGroup | None = None
    stop = {"now": False}

    def on_signal(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    try:
        bootstrap = broker.start() if broker is not None else str(external)
        settings = load_settings(DarkroomSettings, kafka_bootstrap_servers=bootstrap)
        asyncio.run(
            create_topics(
                bootstrap,
                settings_layouts(settings),
            )
        )
        key, keys_file = admin_key(data_dir)
        group = ServiceGroup(
            {
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "DARKROOM_DATA_DIR": str(data_dir / "state"),
                "DARKROOM_STORAGE__BACKEND": "local",
                "DARKROOM_STORAGE__ROOT": str(data_dir / "objects"),
                "DARKROOM_AUTH__API_KEYS_FILE": str(keys_file),
            },
            data_dir / "logs",
        )
        processes = {
            name: group.start(name) for name in ("ingest", "raw-provider", "variants", "catalog")
        }
        catalog_api = f"http://127.0.0.1:{processes['catalog'].web_port}"
        upload = group.start(
            "upload-api", extra_env={"DARKROOM_INGEST_CATALOG_API_URL": catalog_api}
        )
        upload_api = f"http://127.0.0.1:{upload.web_port}"
        deadline = time.monotonic() + READY_TIMEOUT_S
        upload.wait_ok(f"{upload_api}/healthz", deadline)
        processes["catalog"].wait_ok(f"{catalog_api}/healthz", deadline)
        print(
            json.dumps({"upload_api": upload_api, "catalog_api": catalog_api, "api_key": key}),
            flush=True,
        )
        while not stop["now"]:
            if dead := group.exited():
                print(f"darkroom serve: {dead[0].name} exited:\n{dead[0].tail()}", file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    except (DarkroomError, RuntimeError) as exc:
        print(f"darkroom serve: {exc}", file=sys.stderr)
        return 1
    finally:
        if group is not None:
            group.stop()
        if broker is not None and started_broker:
            broker.stop()
