"""Changelog-backed tables: local state that the broker can always rebuild.

A table is partitioned like the stage's input topics. A handler reads and writes it
inside one event's :class:`RecordScope`: reads see that event's own writes first,
then the partition the event came from; writes are only buffered. After the
handler's events were acknowledged, the runtime sends the writes to the table's
compacted changelog topic (same partition number), waits for the acks, and only then
applies them to the local store together with the changelog offset they reached
(:meth:`Table.persist`). So the local store never holds a write the changelog lacks,
and an event is never committed before its writes are in the changelog.

A worker that is assigned a partition restores it before it processes anything of it
(:class:`Restorer`): from its stored changelog offset (or from the beginning, for an
empty store) up to the changelog's end. A store that claims an offset past the end
(the topic was recreated), or before its beginning, is wiped and rebuilt.

Stores: :class:`MemoryPartition` (rebuilt on every start) and :class:`RocksPartition`
(RocksDB via rocksdict: data and offset written in one atomic batch).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2

from darkroom_common.producer import METADATA_MAX_AGE_MS

log = logging.getLogger(__name__)

CodecName = Literal["raw", "json"]
_OFFSET_KEY = b"\x00darkroom:changelog-offset"
"""Where a RocksDB partition keeps its changelog offset (table keys never start with NUL)."""


def encode_with(codec: CodecName, obj: Any) -> bytes:
    """Serialise a key or value: ``raw`` (a ``str`` as UTF-8) or ``json`` (compact JSON)."""
    if codec == "raw":
        return str(obj).encode()
    return json.dumps(obj, separators=(",", ":")).encode()


def decode_with(codec: CodecName, data: bytes) -> Any:
    """Inverse of :func:`encode_with`."""
    if codec == "raw":
        return data.decode()
    return json.loads(data)


def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partition of ``key``: ``murmur2(key) & 0x7fffffff % partitions``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class _Tombstone:
    def __repr__(self) -> str:
        return "TOMBSTONE"


TOMBSTONE: Any = _Tombstone()
"""A buffered delete."""


@dataclass
class RecordScope:
    """The table writes of the event being handled, and where it came from.

    Attributes:
        partition: the event's partition, which is the tables' partition it reads/writes.
        lane: the lane handling it (a table may only be written from its own lane).
        writes: per table, ``{key: value or TOMBSTONE}`` in write order.
    """

    partition: int
    lane: str
    writes: dict[Table, dict[Any, Any]] = field(default_factory=dict)

    def clear(self) -> None:
        """Forget every buffered write (a retried attempt starts afresh)."""
        self.writes.clear()

    @contextlib.contextmanager
    def active(self) -> Iterator[RecordScope]:
        """Make this the current scope of table reads and writes while the block runs."""
        token = _SCOPE.set(self)
        try:
            yield self
        finally:
            _SCOPE.reset(token)


_SCOPE: ContextVar[RecordScope | None] = ContextVar("darkroom_record_scope", default=None)


class PartitionStore(abc.ABC):
    """One partition of one table on this worker: bytes keys → bytes values, plus the
    changelog offset the data reflects (-1: nothing applied)."""

    @property
    @abc.abstractmethod
    def offset(self) -> int:
        """The last changelog offset applied."""

    @abc.abstractmethod
    def get(self, key: bytes) -> bytes | None:
        """Return the value under ``key``, or ``None``."""

    @abc.abstractmethod
    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Iterate over every ``(key, value)``."""

    @abc.abstractmethod
    def apply(self, changes: Sequence[tuple[bytes, bytes | None]], offset: int) -> None:
        """Apply ``changes`` (``None`` deletes) and record ``offset``, atomically."""

    @abc.abstractmethod
    def wipe(self) -> None:
        """Remove every key and reset the offset to -1."""

    def close(self) -> None:  # noqa: B027 - the memory store holds nothing to release
        """Release the store's resources."""


class MemoryPartition(PartitionStore):
    """A partition in a dict: fast, rebuilt from the changelog on every start."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._offset = -1

    @property
    def offset(self) -> int:
        """The last changelog offset applied."""
        return self._offset

    def get(self, key: bytes) -> bytes | None:
        """Return the value under ``key``, or ``None``."""
        return self._data.get(key)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Iterate over a snapshot of every ``(key, value)``."""
        return iter(list(self._data.items()))

    def apply(self, changes: Sequence[tuple[bytes, bytes | None]], offset: int) -> None:
        """Apply ``changes`` and record ``offset``."""
        for key, value in changes:
            if value is None:
                self._data.pop(key, None)
            else:
                self._data[key] = value
        self._offset = max(self._offset, offset)

    def wipe(self) -> None:
        """Empty the partition."""
        self._data.clear()
        self._offset = -1


class RocksPartition(PartitionStore):
    """A partition in its own RocksDB database (rocksdict), kept across restarts.

    Args:
        path: the database folder (created when missing).
    """

    def __init__(self, path: Path) -> None:
        from rocksdict import Options, Rdict

        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._options = Options(raw_mode=True)
        self._db = Rdict(str(path), options=self._options)
        raw = self._db.get(_OFFSET_KEY)
        self._offset = int(raw) if raw is not None else -1

    @property
    def offset(self) -> int:
        """The last changelog offset applied."""
        return self._offset

    def get(self, key: bytes) -> bytes | None:
        """Return the value under ``key``, or ``None``."""
        value: Any = self._db.get(key)  # raw mode: bytes (rocksdict types it loosely)
        return None if value is None else bytes(value)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Iterate over every ``(key, value)`` (the offset record excluded)."""
        entries: Iterator[tuple[Any, Any]] = self._db.items()  # raw mode: bytes
        for key, value in entries:
            if key != _OFFSET_KEY:
                yield bytes(key), bytes(value)

    def apply(self, changes: Sequence[tuple[bytes, bytes | None]], offset: int) -> None:
        """Apply ``changes`` and record ``offset`` in one write batch."""
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        for key, value in changes:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        offset = max(self._offset, offset)
        batch.put(_OFFSET_KEY, str(offset).encode())
        self._db.write(batch)
        self._offset = offset

    def wipe(self) -> None:
        """Delete the database and start an empty one."""
        from rocksdict import Rdict

        self._db.close()
        shutil.rmtree(self.path, ignore_errors=True)
        self._db = Rdict(str(self.path), options=self._options)
        self._offset = -1

    def close(self) -> None:
        """Close the database."""
        self._db.close()


StoreKind = Literal["memory", "rocksdb"]


class Table:
    """A changelog-backed table of one stage (see the module docstring).

    Created by :meth:`darkroom_runtime.app.StageApp.table`. Inside a handler it reads
    like a dict (``get``, ``[]``, ``in``) and writes like one (``[] =``, ``del``); values
    must be JSON-ready and are returned as fresh copies (replace a value to change it).
    Outside a handler, reads go to the partition of the key (Kafka's default
    partitioner over the encoded key), and only partitions this worker has restored
    answer; writes are refused.

    Args:
        name: the table name (``jobs``).
        changelog: the broker-side changelog topic.
        partitions: the partition count (that of the stage's input topics).
        lane: the only lane whose handlers may write it.
        store: ``memory`` or ``rocksdb``.
        directory: where RocksDB partitions live (``<dir>/<partition>``).
        key_codec, value_codec: how keys and values are serialised (``raw`` keys are
            ``str`` as UTF-8).
    """

    def __init__(
        self,
        name: str,
        *,
        changelog: str,
        partitions: int,
        lane: str,
        store: StoreKind = "memory",
        directory: Path | None = None,
        key_codec: CodecName = "raw",
        value_codec: CodecName = "json",
    ) -> None:
        if store == "rocksdb" and directory is None:
            raise ValueError(f"table {name}: a RocksDB store needs a directory")
        self.name = name
        self.changelog = changelog
        self.partitions = partitions
        self.lane = lane
        self.store_kind = store
        self.directory = directory
        self.key_codec: CodecName = key_codec
        self.value_codec: CodecName = value_codec
        self._stores: dict[int, PartitionStore] = {}
        self._ready: set[int] = set()
        self._listeners: list[Callable[[Any, Any], None]] = []

    def __repr__(self) -> str:
        return f"Table({self.name!r}, ready={sorted(self._ready)})"

    # ---- reading and writing -------------------------------------------------

    def _locate(self, key: Any) -> tuple[RecordScope | None, PartitionStore | None, bytes]:
        raw = encode_with(self.key_codec, key)
        scope = _SCOPE.get()
        partition = scope.partition if scope is not None else partition_for(raw, self.partitions)
        store = self._stores.get(partition) if partition in self._ready else None
        return scope, store, raw

    def get(self, key: Any, default: Any = None) -> Any:
        """Return the value under ``key`` (a fresh copy), or ``default``."""
        scope, store, raw = self._locate(key)
        if scope is not None:
            pending = scope.writes.get(self, {})
            if key in pending:
                value = pending[key]
                return default if value is TOMBSTONE else decode_with(self.value_codec, value)
        if store is None:
            return default
        data = store.get(raw)
        return default if data is None else decode_with(self.value_codec, data)

    def __getitem__(self, key: Any) -> Any:
        value = self.get(key, TOMBSTONE)
        if value is TOMBSTONE:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self.get(key, TOMBSTONE) is not TOMBSTONE

    def _scope_for_write(self) -> RecordScope:
        scope = _SCOPE.get()
        if scope is None:
            raise RuntimeError(f"table {self.name}: writes happen inside an event's handler")
        if scope.lane != self.lane:
            raise RuntimeError(
                f"table {self.name} is written by lane {self.lane!r}, not {scope.lane!r}"
            )
        return scope

    def __setitem__(self, key: Any, value: Any) -> None:
        scope = self._scope_for_write()
        scope.writes.setdefault(self, {})[key] = encode_with(self.value_codec, value)

    def __delitem__(self, key: Any) -> None:
        scope = self._scope_for_write()
        scope.writes.setdefault(self, {})[key] = TOMBSTONE

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Iterate over every ``(key, value)`` of the partitions this worker holds."""
        for partition in sorted(self._ready):
            store = self._stores[partition]
            for key, value in store.items():
                yield decode_with(self.key_codec, key), decode_with(self.value_codec, value)

    def values(self) -> Iterator[Any]:
        """Iterate over every value of the partitions this worker holds."""
        return (value for _, value in self.items())

    def keys(self) -> Iterator[Any]:
        """Iterate over every key of the partitions this worker holds."""
        return (key for key, _ in self.items())

    def on_change(self, listener: Callable[[Any, Any], None]) -> None:
        """Call ``listener(key, value or None)`` after each write is applied locally."""
        self._listeners.append(listener)

    def holds(self, partition: int) -> bool:
        """Whether this worker has restored ``partition`` and serves it."""
        return partition in self._ready

    def partition_of(self, key: Any) -> int:
        """The partition ``key`` lives in (the topic partition events of that key go to)."""
        return partition_for(encode_with(self.key_codec, key), self.partitions)

    # ---- the runtime's side --------------------------------------------------

    def store(self, partition: int) -> PartitionStore:
        """Return (opening it when needed) the local store of ``partition``."""
        if partition not in self._stores:
            if self.store_kind == "rocksdb":
                assert self.directory is not None
                self._stores[partition] = RocksPartition(self.directory / str(partition))
            else:
                self._stores[partition] = MemoryPartition()
        return self._stores[partition]

    def mark_ready(self, partition: int) -> None:
        """Serve ``partition`` (it was restored)."""
        self._ready.add(partition)

    def release(self, partition: int) -> None:
        """Stop serving ``partition`` (revoked); its local data stays for a later restore.

        A RocksDB partition is closed, so that its next owner can open it when it runs
        on the same data folder (several workers on one machine).
        """
        self._ready.discard(partition)
        if self.store_kind == "rocksdb" and (store := self._stores.pop(partition, None)):
            store.close()

    def pending(self, scope: RecordScope) -> list[tuple[bytes, bytes | None]]:
        """Return ``scope``'s buffered writes of this table as changelog records."""
        return [
            (encode_with(self.key_codec, k), None if v is TOMBSTONE else v)
            for k, v in scope.writes.get(self, {}).items()
        ]

    def persist(
        self, partition: int, changes: Sequence[tuple[bytes, bytes | None]], offset: int
    ) -> None:
        """Apply acknowledged changelog records locally, up to changelog ``offset``."""
        self.store(partition).apply(changes, offset)
        for key, value in changes:
            decoded_key = decode_with(self.key_codec, key)
            decoded = None if value is None else decode_with(self.value_codec, value)
            for listener in self._listeners:
                listener(decoded_key, decoded)

    def close(self) -> None:
        """Close every local store."""
        for store in self._stores.values():
            store.close()
        self._stores.clear()
        self._ready.clear()


class Restorer:
    """Brings tables' partitions up to their changelogs' ends, before they are processed.

    Each restore reads with a consumer of its own, outside any consumer group
    (explicit partitions and offsets), closed when the restore ends.

    Args:
        bootstrap: the Kafka cluster.
        client_id: Kafka client id.
        on_restored: called with ``(table name, records applied)`` per table partition.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str,
        on_restored: Callable[[str, int], None] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.on_restored = on_restored

    async def close(self) -> None:
        """Nothing is held between restores (kept for symmetry with the worker's other parts)."""

    async def restore(self, tables: Sequence[Table], partition: int) -> int:
        """Restore ``partition`` of every table in ``tables``; return the records applied.

        Reads each changelog partition from the store's offset + 1 (its beginning for
        an empty store) up to the end offset it has now, applying records in order in
        batches. Then the partition is marked ready.

        Raises:
            KafkaError, OSError: the broker could not be read (the caller retries).
        """
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            client_id=f"{self.client_id}-restore",
            metadata_max_age_ms=METADATA_MAX_AGE_MS,
        )
        await consumer.start()
        try:
            applied, ends = await self._read(consumer, tables, partition)
        finally:
            # aiokafka's group-less consumer can re-raise its own fetcher's cancellation,
            # or wait on it, when stopped: bounded, and never mistaken for ours.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(consumer.stop()), 10)
        for table in tables:
            tp = TopicPartition(table.changelog, partition)
            # Compaction may have removed the last offsets: remember the end, so the
            # next restore starts there.
            if ends[tp] > 0:
                table.store(partition).apply([], ends[tp] - 1)
            table.mark_ready(partition)
            if self.on_restored is not None:
                self.on_restored(table.name, applied[tp])
        return sum(applied.values())

    async def _read(
        self, consumer: AIOKafkaConsumer, tables: Sequence[Table], partition: int
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        tps = {TopicPartition(t.changelog, partition): t for t in tables}
        consumer.assign(list(tps))
        begins = await consumer.beginning_offsets(list(tps))
        ends = await consumer.end_offsets(list(tps))
        remaining: set[TopicPartition] = set()
        for tp, table in tps.items():
            store = table.store(partition)
            start = store.offset + 1 if store.offset >= 0 else begins[tp]
            if start > ends[tp] or start < begins[tp]:
                log.warning(
                    "local state does not match the changelog; rebuilding it",
                    extra={
                        "table": table.name,
                        "partition": partition,
                        "local_offset": store.offset,
                        "changelog_begin": begins[tp],
                        "changelog_end": ends[tp],
                    },
                )
                store.wipe()
                start = begins[tp]
            consumer.seek(tp, start)
            if start < ends[tp]:
                remaining.add(tp)
        applied = dict.fromkeys(tps, 0)
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                wanted = [r for r in records if r.offset < ends[tp]]
                if wanted:
                    tps[tp].store(partition).apply(
                        [(r.key or b"", r.value) for r in wanted], wanted[-1].offset
                    )
                    applied[tp] += len(wanted)
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        return applied, ends
