"""Replay benchmark: reprocess N cataloged images after adding one variant to their profile.

Prints figures; it is not a test. On its own broker (or KAFKA_BOOTSTRAP_SERVERS)
and topic prefix it starts the four services, uploads N images (the corpus's
orientation photos spread over galleries, ten distinct photos per gallery) with
profile ``p1`` (two variants) and waits until all are cataloged. Then:

* idle latency: ``--live`` single uploads one at a time, uploaded → cataloged;
* ``darkroom replay --topic validated --profile p2`` (``p1`` plus one variant)
  over all N, and while that backfill runs the same ``--live`` uploads again;
* counts renders in the replay (``variant-done`` events of the replay jobs that
  were not reused: must be N, all of the new variant), checks the catalog holds
  each image once, and reports the backfill's time and the live p50/p99 ratio.

    .venv/bin/python bench/replay_bench.py [--images 1000] [--live 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer

from darkroom_cli.commands.replay import produce, read_range, replay_events
from darkroom_cli.tracker import JobTracker
from darkroom_common.uploads import UploadPublisher, upload_file
from darkroom_dev.local.jars import repo_root
from darkroom_dev.local.kafka import LocalKafka
from darkroom_dev.local.pipeline import LocalPipeline
from darkroom_dev.testing.kafka import free_ports
from darkroom_schemas import decode

CORPUS = Path(os.environ.get("DARKROOM_CORPUS") or repo_root().parent / "shared" / "corpus")
PHOTOS = sorted((CORPUS / "orientation").glob("*.jpg"))[:10]
KEY = "replay-bench-admin-key-0123456789abcdef"
P1 = {"name": "p1", "specs": [{"name": "thumb", "width": 64, "height": 64, "fit": "cover"},
                              {"name": "medium", "width": 320, "height": 240}]}  # fmt: skip
P2 = {
    "name": "p2",
    "specs": [*P1["specs"], {"name": "tiny", "width": 32, "height": 32, "format": "webp"}],
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def upload_all(pipeline: LocalPipeline, n: int, galleries: int) -> None:
    tracker = JobTracker(pipeline.bootstrap, topic_prefix=pipeline.prefix)
    await tracker.start()
    jobs = []
    try:
        async with UploadPublisher(pipeline.bootstrap, topic_prefix=pipeline.prefix) as pub:
            for i in range(n):
                event = await upload_file(pipeline.store, pub, PHOTOS[i % len(PHOTOS)],
                                          gallery_id=f"b{i // len(PHOTOS)}", profile="p1")  # fmt: skip
                jobs.append(event.job_id)
        ends = await tracker.wait(jobs, timeout_s=1800, should_abort=pipeline.died)
    finally:
        await tracker.stop()
    bad = [j for j in jobs if j not in ends or ends[j].status != "complete"]
    if bad:
        raise SystemExit(f"{len(bad)} of {n} uploads did not complete")


async def live_latencies(pipeline: LocalPipeline, count: int) -> list[float]:
    out = []
    for _ in range(count):
        [(upload, end)] = await pipeline.run(
            [PHOTOS[0]], gallery=f"live{uuid.uuid4().hex[:8]}", timeout_s=300, profile="p1"
        )
        if end is None or end.cataloged is None:
            raise SystemExit("a live upload did not complete")
        out.append((end.cataloged.occurred_at - upload.occurred_at).total_seconds())
    return out


async def replay_outcome(
    bootstrap: str, prefix: str, suffix: str
) -> tuple[Counter[str], Counter[str]]:
    consumer = AIOKafkaConsumer(
        f"{prefix}variant-done",
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    rendered: Counter[str] = Counter()
    reused: Counter[str] = Counter()
    try:
        while batch := await consumer.getmany(timeout_ms=3000):
            for records in batch.values():
                for r in records:
                    e = decode(r.value or b"")
                    if suffix in getattr(e, "job_id", "") and getattr(e, "status", "") == "done":
                        (reused if e.provenance.get("reused") == "true" else rendered)[
                            e.variant
                        ] += 1
    finally:
        await consumer.stop()
    return rendered, reused


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--live", type=int, default=20)
    parser.add_argument(
        "--rate", type=float, default=20.0, help="replay pace, images/s (0: no cap)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="darkroom-replay-bench-"))
    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        port, controller = free_ports(2)
        broker = LocalKafka(work / "kafka", port=port, controller_port=controller)
        bootstrap = broker.start(timeout_s=120)
    profiles = work / "profiles"
    profiles.mkdir()
    (profiles / "p1.json").write_text(json.dumps(P1))
    (profiles / "p2.json").write_text(json.dumps(P2))
    prefix = f"rb{uuid.uuid4().hex[:6]}."
    pipeline = LocalPipeline(bootstrap, prefix, work / "data", env={
        "DARKROOM_VARIANTS_PROFILES_DIR": str(profiles), "DARKROOM_LOG_LEVEL": os.environ.get("DARKROOM_LOG_LEVEL", "WARNING"),
        "DARKROOM_AUTH__API_KEYS": json.dumps([{"name": "b", "key": KEY, "scopes": ["admin"]}])})  # fmt: skip
    try:
        asyncio.run(pipeline.create_topics())
        pipeline.start()
        started = time.monotonic()
        asyncio.run(upload_all(pipeline, args.images, galleries=args.images // len(PHOTOS)))
        print(
            f"{args.images} images uploaded and cataloged in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        idle = asyncio.run(live_latencies(pipeline, args.live))
        print(
            f"live uploaded→cataloged, idle: p50 {statistics.median(idle):.2f} s  p99 {percentile(idle, 0.99):.2f} s",
            flush=True,
        )

        async def backfill() -> tuple[int, list[float], float]:
            t0 = time.monotonic()
            events = await read_range(
                bootstrap, f"{prefix}validated", from_time=None, from_offset=0, to_time=None
            )
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            chosen = replay_events(events, "validated", gallery=None, profile="p2", stamp=stamp)
            tracker = JobTracker(bootstrap, topic_prefix=prefix)
            await tracker.start()
            try:
                backfill = asyncio.create_task(
                    produce(bootstrap, f"{prefix}replay.validated", chosen, rate=args.rate or None)
                )
                await asyncio.sleep(1)  # measure the live lane while the backfill is flowing
                live = await live_latencies(pipeline, args.live)
                await backfill
                ends = await tracker.wait(
                    [e.job_id for e in chosen], timeout_s=1800, should_abort=pipeline.died
                )
            finally:
                await tracker.stop()
            if len(ends) != len(chosen) or {e.status for e in ends.values()} != {"complete"}:
                raise SystemExit(f"{len(chosen) - len(ends)} replay jobs did not complete")
            return len(chosen), live, time.monotonic() - t0

        replayed, during, backfill_s = asyncio.run(backfill())
        rendered, reused = asyncio.run(replay_outcome(bootstrap, prefix, ".replay-"))
        print(
            f"replay of {replayed} images (+1 variant): {backfill_s:.1f} s "
            f"({replayed / backfill_s * 60:.0f} images/min); rendered {dict(rendered)}, reused {dict(reused)}",
            flush=True,
        )
        print(
            f"live uploaded→cataloged during the backfill: p50 {statistics.median(during):.2f} s  p99 {percentile(during, 0.99):.2f} s"
            f"  (p99 ratio to idle {percentile(during, 0.99) / percentile(idle, 0.99):.2f})",
            flush=True,
        )
        catalog = next(p for p in pipeline.services.processes if p.name == "catalog")
        totals = [httpx.get(f"http://127.0.0.1:{catalog.web_port}/v1/galleries/b{g}/images",
                            headers={"Authorization": f"Bearer {KEY}"}, timeout=10).json()["total"]
                  for g in range(args.images // len(PHOTOS))]  # fmt: skip
        print(
            f"catalog: {sum(totals)} images in {len(totals)} galleries (expected {args.images}; duplicates {sum(totals) - args.images})"
        )
    finally:
        pipeline.stop()
        if broker is not None:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
