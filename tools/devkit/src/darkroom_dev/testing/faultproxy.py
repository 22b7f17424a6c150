"""A fault-injecting TCP forwarder for tests: put it in front of an HTTP server (the S3 server).

Clients talk to :attr:`FaultProxy.endpoint_url`; the proxy forwards every byte
unchanged to the upstream server, so a SigV4 signature made for the proxy's
``Host`` still verifies at the server (S3Proxy checks the ``Host`` it receives).
At any moment a test can switch it, from any thread, to:

* :meth:`FaultProxy.fail`: answer new requests (every one, or every k-th) with
  an S3 XML error, e.g. ``503 SlowDown`` or ``500 InternalError``, and
  ``Connection: close``, instead of forwarding them;
* :meth:`FaultProxy.vanish`: reset every open connection and stop listening,
  so connects are refused (the server is gone);
* :meth:`FaultProxy.heal`: forward again (and listen again on the same port).

It works on HTTP/1.1 without pipelining (what botocore/aiohttp send): a client
chunk that begins with a request line after the upstream has answered is a
new request. Keep-alive connections opened before a fault therefore see the
fault on their next request.

::

    with FaultProxy("127.0.0.1:8333") as proxy:
        settings = settings.model_copy(update={"endpoint_url": proxy.endpoint_url})
        proxy.fail(SLOW_DOWN)   # every request: 503 SlowDown
        proxy.vanish()          # connection refused
        proxy.heal()
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

CHUNK = 64 * 1024
_REQUEST_LINE = re.compile(rb"^([A-Z]+) \S+ HTTP/1\.[01]\r\n")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect:\s*100-continue", re.IGNORECASE)
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class HttpFault:
    """An S3-style error answer the proxy gives instead of forwarding a request.

    Attributes:
        status: HTTP status, e.g. 503.
        code: the S3 error code in the XML body (``<Error><Code>``), e.g. ``SlowDown``.
        message: the ``<Message>`` text.
        every: answer every ``every``-th request with the error (1: all of them);
            the others are forwarded.
    """

    status: int = 503
    code: str = "SlowDown"
    message: str = "Please reduce your request rate."
    every: int = 1

    def response(self, method: str, request_id: str) -> bytes:
        """Return the whole HTTP/1.1 response (no body for ``HEAD``), with ``Connection: close``."""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{self.message}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        head = (
            f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Error')}\r\n"
            "Content-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"x-amz-request-id: {request_id}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        return head if method == "HEAD" else head + body


SLOW_DOWN = HttpFault(503, "SlowDown", "Please reduce your request rate.")
"""S3's throttling answer."""
INTERNAL_ERROR = HttpFault(500, "InternalError", "We encountered an internal error.")
"""S3's generic server error."""


@dataclass(slots=True)
class ProxyStats:
    """What the proxy did since it started.

    Attributes:
        connections: client connections accepted.
        forwarded: requests forwarded to the upstream server.
        injected: error answers given, by HTTP status.
        resets: connections cut by :meth:`FaultProxy.vanish`.
    """

    connections: int = 0
    forwarded: int = 0
    injected: Counter[int] = field(default_factory=Counter)
    resets: int = 0


class FaultProxy:
    """A TCP forwarder on 127.0.0.1 in a background thread (its own event loop).

    Args:
        upstream: the server, as ``host:port`` or a URL (``http://127.0.0.1:8333``).
        host: where to listen.
        port: the port to listen on; 0 picks a free one (kept across :meth:`vanish`).

    Raises:
        ValueError: ``upstream`` names no port.
    """

    def __init__(self, upstream: str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        parts = urlsplit(upstream if "//" in upstream else f"//{upstream}")
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream {upstream!r} needs a host and a port")
        self.upstream = (parts.hostname, parts.port)
        self.host = host
        self.port = port
        self.stats = ProxyStats()
        self.mode: Literal["forward", "fail", "vanished"] = "forward"
        self._fault = SLOW_DOWN
        self._seen = 0  # requests seen while failing, for HttpFault.every
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def endpoint_url(self) -> str:
        """``http://<host>:<port>``, the URL clients use instead of the upstream's."""
        return f"http://{self.host}:{self.port}"

    # -- control (any thread) -------------------------------------------------

    def start(self) -> FaultProxy:
        """Start the thread and listen; return ``self``."""
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        """Close every connection, stop listening and end the thread."""
        if self._thread.is_alive():
            self._call(self._shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail(self, fault: HttpFault = SLOW_DOWN) -> None:
        """Answer new requests with ``fault`` (every ``fault.every``-th one) until :meth:`heal`."""
        if self.mode == "vanished":
            self._call(self._listen())
        self._fault, self._seen, self.mode = fault, 0, "fail"

    def vanish(self) -> None:
        """Reset every open connection and refuse new ones until :meth:`heal`."""
        self.mode = "vanished"
        self._call(self._close(reset=True))

    def heal(self) -> None:
        """Forward every request again (listening again after :meth:`vanish`)."""
        if self.mode == "vanished":
            self._call(self._listen())
        self.mode = "forward"

    @contextlib.contextmanager
    def failing(self, fault: HttpFault = SLOW_DOWN) -> Iterator[None]:
        """Fail requests with ``fault`` inside the ``with`` block, then heal."""
        self.fail(fault)
        try:
            yield
        finally:
            self.heal()

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=30)

    # -- the event loop's side ----------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self, *, reset: bool) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            if reset:
                self.stats.resets += 1
                writer.transport.abort()  # RST: the peer sees "connection reset"
            else:
                writer.close()
        self._writers.clear()

    async def _shutdown(self) -> None:
        await self._close(reset=False)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "vanished":  # accepted just before the listener closed
            writer.transport.abort()
            return
        self.stats.connections += 1
        self._writers.add(writer)
        link = _Link(self, reader, writer)
        try:
            await link.client_to_upstream()
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            await link.close()

    def _inject(self) -> HttpFault | None:
        """Return the fault for the request arriving now, or ``None`` to forward it."""
        if self.mode != "fail":
            return None
        self._seen += 1
        return self._fault if self._seen % self._fault.every == 0 else None


class _Link:
    """One client connection and, once a request is forwarded, its upstream connection."""

    def __init__(
        self, proxy: FaultProxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.proxy = proxy
        self.reader = reader
        self.writer = writer
        self.upstream: asyncio.StreamWriter | None = None
        self.pump: asyncio.Task[None] | None = None
        self.between_requests = True  # the client speaks next; set again by each answer

    async def client_to_upstream(self) -> None:
        while data := await self.reader.read(CHUNK):
            match = _REQUEST_LINE.match(data) if self.between_requests else None
            if match is not None:
                fault = self.proxy._inject()
                if fault is not None:
                    await self._answer(fault, match.group(1).decode(), data)
                    return
                self.proxy.stats.forwarded += 1
            self.between_requests = False
            if self.upstream is None:
                await self._connect()
            assert self.upstream is not None
            self.upstream.write(data)
            await self.upstream.drain()
        if self.upstream is not None and self.upstream.can_write_eof():
            self.upstream.write_eof()
        if self.pump is not None:
            await self.pump

    async def _connect(self) -> None:
        up_reader, self.upstream = await asyncio.open_connection(*self.proxy.upstream)
        self.proxy._writers.add(self.upstream)
        self.pump = asyncio.create_task(self._upstream_to_client(up_reader))

    async def _upstream_to_client(self, up_reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await up_reader.read(CHUNK):
                self.between_requests = True
                self.writer.write(data)
                await self.writer.drain()
        self.writer.close()

    async def _answer(self, fault: HttpFault, method: str, data: bytes) -> None:
        """Read the rest of the request (unless it waits for ``100 Continue``), answer, close."""
        with contextlib.suppress(TimeoutError, asyncio.IncompleteReadError):
            async with asyncio.timeout(10):
                while b"\r\n\r\n" not in data:
                    more = await self.reader.read(CHUNK)
                    if not more:
                        return
                    data += more
                head, _, body = data.partition(b"\r\n\r\n")
                length = _CONTENT_LENGTH.search(head)
                if length and not _EXPECT_CONTINUE.search(head):
                    # Drained so closing does not reset the connection before the client reads.
                    await self.reader.readexactly(max(0, int(length.group(1)) - len(body)))
        self.proxy.stats.injected[fault.status] += 1
        n = sum(self.proxy.stats.injected.values())
        self.writer.write(fault.response(method, f"faultproxy-{n}"))
        await self.writer.drain()

    async def close(self) -> None:
        for w in (self.writer, self.upstream):
            if w is not None:
                self.proxy._writers.discard(w)
                w.close()
        if self.pump is not None and not self.pump.done():
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump
