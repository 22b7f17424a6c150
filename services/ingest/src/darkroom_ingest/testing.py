"""Test helpers for the upload API: real HTTP servers on 127.0.0.1, broker reads, test keys.

Used by the ingest and CLI tests; importing it needs pytest-free code only.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition

from darkroom_common.topics import create_topics, layouts, partition_counts
from darkroom_schemas import decode

UPLOAD_KEY = "upload-key-0123456789abcdef"
READ_KEY = "read-key-0123456789abcdef00"
ADMIN_KEY = "admin-key-0123456789abcdef0"
KEYS = [
    {"name": "uploader", "key": UPLOAD_KEY, "scopes": ["upload"]},
    {"name": "reader", "key": READ_KEY, "scopes": ["read"]},
    {"name": "admin", "key": ADMIN_KEY, "scopes": ["admin"]},
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """An ASGI app served by uvicorn on 127.0.0.1 in a background thread (its own event loop)."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test HTTP server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def wait_ready(url: str, timeout_s: float = 30) -> None:
    """Poll ``url/readyz`` until 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never became ready")


def auth(key: str) -> dict[str, str]:
    """Authorization header for ``key``."""
    return {"Authorization": f"Bearer {key}"}


def new_prefix() -> str:
    """A fresh topic prefix for one test."""
    return f"t{uuid.uuid4().hex[:8]}."


def make_topics(bootstrap: str, prefix: str, partitions: int = 2) -> None:
    """Create every registry topic under ``prefix``."""
    asyncio.run(create_topics(bootstrap, layouts(prefix, partitions)))


def read_events(
    bootstrap: str,
    topic: str,
    want: int | None,
    timeout_s: float = 20,
    match: Any = None,
) -> list[Any]:
    """Read decoded events of ``topic`` from the beginning, keeping those ``match`` accepts.

    With ``want`` a number: until that many matched (or ``timeout_s`` passed).
    With ``want`` None: every event up to the end offsets at the time of the call.
    """

    async def partitions() -> list[TopicPartition]:
        count = (await partition_counts(bootstrap, [topic])).get(topic, 0)
        return [TopicPartition(topic, p) for p in range(count)]

    async def run() -> list[Any]:
        parts = await partitions()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            out: list[Any] = []
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if want is not None and len(out) >= want:
                    break
                if want is None and all(
                    [await consumer.position(tp) >= end for tp, end in ends.items()]
                ):
                    break
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for r in records:
                        event = decode(r.value)
                        if match is None or match(event):
                            out.append(event)
            return out
        finally:
            await consumer.stop()

    return asyncio.run(run())
