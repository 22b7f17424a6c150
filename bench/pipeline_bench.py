"""Pipeline benchmark: latency uploaded → cataloged, and throughput against the engine's own.

Prints figures; it is not a test. It starts its own Kafka broker in a temporary
folder (or uses KAFKA_BOOTSTRAP_SERVERS), its own topic prefix and data folder,
and the four services as separate processes, exactly as ``darkroom run`` does.

* Latency: one 24 MP JPEG (``large/craft_beer_24mp_progressive.jpg``) at a time on
  an otherwise idle pipeline, with the ``default`` profile and with ``default``
  minus its AVIF variant; from the ``uploaded`` event's ``occurred_at`` to the
  ``cataloged`` event's. Median of ``--repeat`` runs after one warm-up.
* Throughput: the corpus's large JPEGs (the 280 MP one excluded, it exceeds the
  default pixel limit), each uploaded ``--copies`` times to its own gallery, with
  one and with two render workers, in images per minute; divided by the engine's
  own throughput, ``render()`` of the same images with the same profile
  in-process, measured in the same run.

    .venv/bin/python bench/pipeline_bench.py [--repeat 3] [--copies 4] [--json PATH]
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
from pathlib import Path

from darkroom_dev.local.jars import repo_root
from darkroom_dev.local.kafka import LocalKafka
from darkroom_dev.local.pipeline import LocalPipeline
from darkroom_dev.testing.kafka import free_ports
from darkroom_imaging.profiles import load_profile
from darkroom_imaging.render import RenderContext, render

CORPUS = Path(os.environ.get("DARKROOM_CORPUS") or repo_root().parent / "shared" / "corpus")
LATENCY_IMAGE = CORPUS / "large" / "craft_beer_24mp_progressive.jpg"


def large_jpegs() -> list[Path]:
    return sorted(p for p in (CORPUS / "large").glob("*.jpg") if "giant" not in p.name)


def write_profiles(folder: Path) -> None:
    """``default-no-avif``: the default profile without its AVIF variant."""
    default = load_profile("default")
    specs = [s.model_dump(mode="json") for s in default.specs if s.format != "avif"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "default-no-avif.json").write_text(
        json.dumps({"name": "default-no-avif", "specs": specs})
    )


async def latency(pipeline: LocalPipeline, profile: str, repeat: int) -> list[float]:
    seconds = []
    for i in range(repeat + 1):
        [(upload, end)] = await pipeline.run(
            [LATENCY_IMAGE], gallery=f"lat-{uuid.uuid4().hex[:8]}", timeout_s=300, profile=profile
        )
        if end is None or end.cataloged is None or end.status != "complete":
            raise SystemExit(f"latency run failed: {end}")
        if i:  # the first run warms up the services
            seconds.append((end.cataloged.occurred_at - upload.occurred_at).total_seconds())
    return seconds


async def throughput(pipeline: LocalPipeline, images: list[Path]) -> float:
    """Images per minute from the first upload to the last cataloged event."""
    start = time.monotonic()
    tasks = [
        pipeline.run([p], gallery=f"tp-{uuid.uuid4().hex[:10]}", timeout_s=900) for p in images
    ]
    results = await asyncio.gather(*tasks)
    elapsed = time.monotonic() - start
    failed = [u.filename for r in results for u, e in r if e is None or e.status != "complete"]
    if failed:
        raise SystemExit(f"throughput run failed for {failed}")
    return len(images) / elapsed * 60


def engine_throughput(images: list[Path]) -> float:
    specs = load_profile("default").specs
    start = time.monotonic()
    for p in images:
        result = render(p, specs, context=RenderContext(artist="Bench"))
        assert result.ok, result.failures
    return len(images) / (time.monotonic() - start) * 60


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="darkroom-pipeline-bench-"))
    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        port, controller = free_ports(2)
        broker = LocalKafka(work / "kafka", port=port, controller_port=controller)
        bootstrap = broker.start(timeout_s=120)
    write_profiles(work / "profiles")
    figures: dict[str, object] = {}
    pipeline = LocalPipeline(
        bootstrap,
        f"bench{uuid.uuid4().hex[:6]}.",
        work / "data",
        env={
            "DARKROOM_VARIANTS_PROFILES_DIR": str(work / "profiles"),
            "DARKROOM_LOG_LEVEL": "WARNING",
        },
    )
    try:
        asyncio.run(pipeline.create_topics())
        pipeline.start()
        for profile in ("default-no-avif", "default"):
            runs = asyncio.run(latency(pipeline, profile, args.repeat))
            figures[f"latency_{profile}_s"] = {"median": statistics.median(runs), "runs": runs}
            print(
                f"latency uploaded→cataloged, 24 MP JPEG, {profile:<16}: median {statistics.median(runs):.2f} s  runs {[round(r, 2) for r in runs]}",
                flush=True,
            )
        images = large_jpegs() * args.copies
        engine = engine_throughput(images)
        figures["engine_images_per_min"] = engine
        print(
            f"engine alone (in-process render, default profile): {engine:.1f} images/min over {len(images)} images",
            flush=True,
        )
        one = asyncio.run(throughput(pipeline, images))
        figures["pipeline_1_worker_images_per_min"] = one
        print(
            f"pipeline, 1 render worker : {one:.1f} images/min  ratio to engine {one / engine:.2f}",
            flush=True,
        )
        pipeline.services.start("variants")
        two = asyncio.run(throughput(pipeline, images))
        figures["pipeline_2_workers_images_per_min"] = two
        print(
            f"pipeline, 2 render workers: {two:.1f} images/min  ratio to engine {two / engine:.2f}",
            flush=True,
        )
    finally:
        pipeline.stop()
        if broker is not None:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
