"""Reading a ``multipart/form-data`` request body part by part, never whole.

:class:`MultipartStream` drives python-multipart's push parser from an async
byte source (Starlette's ``request.stream()``): :meth:`~MultipartStream.next_part`
returns the next part's headers, :meth:`~MultipartStream.data` yields that
part's bytes as they arrive. Only one network chunk is held at a time, so an
upload of any size streams straight on to the object store. Source: RFC 7578
(``multipart/form-data``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header


class MalformedMultipart(Exception):
    """The body is not valid ``multipart/form-data`` (or ends early)."""


@dataclass(frozen=True, slots=True)
class Part:
    """One part's headers: form field ``name``, ``filename`` (file parts) and ``content_type``."""

    name: str
    filename: str | None
    content_type: str | None


def boundary_of(content_type: str | None) -> bytes:
    """Return the boundary of a ``multipart/form-data`` Content-Type header.

    Raises:
        MalformedMultipart: not multipart/form-data, or no boundary.
    """
    if not content_type:
        raise MalformedMultipart("The request has no Content-Type; send multipart/form-data.")
    ctype, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise MalformedMultipart("Send the file as multipart/form-data with a boundary.")
    return boundary


class MultipartStream:
    """Pull-style reader over a push parser.

    Args:
        source: the request body, chunk by chunk.
        boundary: from :func:`boundary_of`.
    """

    def __init__(self, source: AsyncIterator[bytes], boundary: bytes) -> None:
        self._source = source
        self._events: deque[tuple[str, object]] = deque()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._finished = False
        self._source_done = False
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_end": self._on_end,
            },
        )
        self._in_part = False

    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get("content-disposition", b""))
        if disposition != b"form-data" or b"name" not in options:
            raise MalformedMultipart("A part lacks 'Content-Disposition: form-data; name=…'.")
        filename = options.get(b"filename")
        ctype = self._headers.get("content-type")
        self._events.append(
            (
                "part",
                Part(
                    name=options[b"name"].decode("utf-8", "replace"),
                    filename=filename.decode("utf-8", "replace") if filename is not None else None,
                    content_type=ctype.decode("latin-1").strip() if ctype else None,
                ),
            )
        )

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._events.append(("data", bytes(data[start:end])))

    def _on_part_end(self) -> None:
        self._events.append(("end", None))

    def _on_end(self) -> None:
        self._finished = True

    async def _pull(self) -> bool:
        """Feed one more chunk to the parser; return False once the body is exhausted."""
        if self._source_done:
            return False
        try:
            chunk = await anext(self._source)
        except StopAsyncIteration:
            self._source_done = True
            self._parser.finalize()
            return False
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise MalformedMultipart(f"The multipart body is malformed ({exc}).") from exc
        return True

    async def _next_event(self) -> tuple[str, object]:
        while not self._events:
            if not await self._pull():
                raise MalformedMultipart(
                    "The multipart body ended early."
                    if not self._finished
                    else "The multipart body has no more parts."
                )
        return self._events.popleft()

    async def next_part(self) -> Part | None:
        """Return the next part's headers, skipping the rest of the current part; None at the end.

        Raises:
            MalformedMultipart: the body is malformed or ends early.
        """
        while True:
            if not self._events:
                if self._finished:
                    return None
                if not await self._pull() and not self._events:
                    if self._finished:
                        return None
                    raise MalformedMultipart("The multipart body ended early.")
                continue
            kind, value = self._events.popleft()
            if kind == "part":
                assert isinstance(value, Part)
                return value

    async def data(self) -> AsyncIterator[bytes]:
        """Yield the current part's bytes until its end.

        Raises:
            MalformedMultipart: the body is malformed or ends inside the part.
        """
        while True:
            kind, value = await self._next_event()
            if kind == "end":
                return
            if kind == "data" and value:
                assert isinstance(value, bytes)
                yield value

    async def read_small(self, limit: int) -> bytes:
        """Return the current part's bytes, at most ``limit`` of them (form fields).

        Raises:
            MalformedMultipart: the part is longer than ``limit`` or the body is malformed.
        """
        out = bytearray()
        async for chunk in self.data():
            out += chunk
            if len(out) > limit:
                raise MalformedMultipart(f"A form field is longer than {limit} bytes.")
        return bytes(out)

    async def drain(self, limit: int) -> None:
        """Read and discard up to ``limit`` more bytes of the body, so the client sees our answer."""
        seen = 0
        while seen < limit and not self._source_done:
            try:
                chunk = await anext(self._source)
            except StopAsyncIteration:
                return
            seen += len(chunk)
