"""Tables: what a handler sees, what reaches the changelog, and restores on a real broker."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from darkroom_common.topics import TopicLayout, create_topics
from darkroom_runtime.tables import (
    MemoryPartition,
    RecordScope,
    Restorer,
    RocksPartition,
    Table,
    partition_for,
)
from darkroom_schemas.topics import TopicSpec


def table(tmp_path: Path, store: str = "memory", **over) -> Table:
    options = {
        "changelog": "t-changelog",
        "partitions": 4,
        "lane": "jobs",
        "store": store,
        "directory": tmp_path / "jobs",
    }
    return Table("jobs", **{**options, **over})  # type: ignore[arg-type]


def test_a_handler_reads_its_own_writes_and_nothing_reaches_the_store_before_persist(tmp_path):
    jobs = table(tmp_path)
    jobs.store(1)
    jobs.mark_ready(1)
    scope = RecordScope(partition=1, lane="jobs")
    with scope.active():
        jobs["a"] = {"status": "queued"}
        assert jobs["a"] == {"status": "queued"}
        value = jobs.get("a")
        value["status"] = "mutated"  # a copy: the buffered write is unchanged
        assert jobs["a"] == {"status": "queued"}
        del jobs["a"]
        assert "a" not in jobs
        jobs["b"] = 2
    assert jobs.store(1).get(b"b") is None
    assert jobs.pending(scope) == [(b"a", None), (b"b", b"2")]
    jobs.persist(1, jobs.pending(scope), offset=41)
    assert jobs.store(1).offset == 41
    with RecordScope(partition=1, lane="jobs").active():
        assert jobs["b"] == 2
        assert "a" not in jobs


def test_writes_need_a_handler_of_the_tables_own_lane(tmp_path):
    jobs = table(tmp_path)
    with pytest.raises(RuntimeError, match="inside an event's handler"):
        jobs["a"] = 1
    with (
        RecordScope(partition=0, lane="galleries").active(),
        pytest.raises(RuntimeError, match="written by lane 'jobs'"),
    ):
        jobs["a"] = 1


def test_outside_a_handler_a_key_is_read_from_its_partition_only_when_restored(tmp_path):
    jobs = table(tmp_path)
    p = partition_for(b"img-1", 4)
    assert jobs.partition_of("img-1") == p
    jobs.store(p).apply([(b"img-1", b'{"s":1}')], 0)
    assert jobs.get("img-1") is None  # not restored: not served
    jobs.mark_ready(p)
    assert jobs.get("img-1") == {"s": 1}
    assert dict(jobs.items()) == {"img-1": {"s": 1}}
    jobs.release(p)
    assert jobs.get("img-1") is None


def test_listeners_see_applied_writes(tmp_path):
    jobs = table(tmp_path)
    seen = []
    jobs.on_change(lambda k, v: seen.append((k, v)))
    jobs.persist(0, [(b"a", b"1"), (b"b", None)], 3)
    assert seen == [("a", 1), ("b", None)]


def test_rocksdb_keeps_data_and_offset_together_across_a_reopen(tmp_path):
    store = RocksPartition(tmp_path / "p0")
    store.apply([(b"a", b"1"), (b"b", b"2")], 10)
    store.apply([(b"a", None)], 11)
    store.close()
    again = RocksPartition(tmp_path / "p0")
    assert (again.offset, dict(again.items())) == (11, {b"b": b"2"})
    again.wipe()
    assert (again.offset, dict(again.items())) == (-1, {})
    again.close()


def test_memory_partition_offsets_never_go_back():
    store = MemoryPartition()
    store.apply([(b"a", b"1")], 5)
    store.apply([], 3)
    assert store.offset == 5


async def _changelog(bootstrap: str, records: list[tuple[bytes, bytes | None]]) -> str:
    name = f"rt{uuid.uuid4().hex[:8]}-jobs-changelog"
    spec = TopicSpec(name, cleanup_policy="compact", retention_ms=-1, kind="changelog")
    await create_topics(bootstrap, [TopicLayout(spec, name, 2, 1)])
    await _append(bootstrap, name, records)
    return name


async def _append(bootstrap: str, name: str, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(name, value, key=key, partition=1)
    finally:
        await producer.stop()


@pytest.mark.kafka
@pytest.mark.parametrize("store", ["memory", "rocksdb"])
async def test_restore_rebuilds_empty_state_and_catches_up_stale_state(
    kafka_bootstrap, tmp_path, store
):
    name = await _changelog(
        kafka_bootstrap, [(b"a", b"1"), (b"b", b"2"), (b"a", b"3"), (b"b", None)]
    )
    jobs = table(tmp_path, store, changelog=name, partitions=2)
    restorer = Restorer(kafka_bootstrap, client_id="test")
    try:
        assert await restorer.restore([jobs], 1) == 4
        assert dict(jobs.items()) == {"a": 3}
        assert jobs.store(1).offset == 3
        jobs.release(1)
        # Another worker went on writing the partition: only the new records are read.
        await _append(kafka_bootstrap, name, [(b"c", b"4")])
        assert await restorer.restore([jobs], 1) == 1
        assert dict(jobs.items()) == {"a": 3, "c": 4}
        # Nothing new: nothing read, partition served again.
        assert await restorer.restore([jobs], 1) == 0
        assert jobs.holds(1)
    finally:
        await restorer.close()
        jobs.close()


@pytest.mark.kafka
async def test_a_store_ahead_of_its_changelog_is_wiped_and_rebuilt(kafka_bootstrap, tmp_path):
    name = await _changelog(kafka_bootstrap, [(b"a", b"1")])
    jobs = table(tmp_path, "rocksdb", changelog=name, partitions=2)
    # As if the changelog had been deleted and recreated under the same name.
    jobs.store(1).apply([(b"ghost", b"9")], 57)
    restorer = Restorer(kafka_bootstrap, client_id="test")
    try:
        await restorer.restore([jobs], 1)
        assert dict(jobs.items()) == {"a": 1}
    finally:
        await restorer.close()
        jobs.close()


@pytest.mark.kafka
async def test_a_cancelled_restore_leaves_a_consistent_store(kafka_bootstrap, tmp_path):
    records = [(f"k{i % 50}".encode(), str(i).encode()) for i in range(3000)]
    name = await _changelog(kafka_bootstrap, records)
    jobs = table(tmp_path, "rocksdb", changelog=name, partitions=2)
    restorer = Restorer(kafka_bootstrap, client_id="test")
    try:
        task = asyncio.create_task(restorer.restore([jobs], 1))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert not jobs.holds(1)
        await restorer.restore([jobs], 1)
        assert dict(jobs.items()) == {f"k{i}": 2950 + i for i in range(50)}
    finally:
        await restorer.close()
        jobs.close()
