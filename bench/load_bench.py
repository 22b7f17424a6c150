"""Load benchmark: a burst of uploads through the upload API, every job followed to ``cataloged``.

Prints figures; it is not a test (``tests/test_load.py`` runs the same code and
asserts them). It starts its own Kafka broker in a temporary folder (unless
``--bootstrap`` or KAFKA_BOOTSTRAP_SERVERS names one), a fresh topic prefix and
data folder, the four services and the upload API as separate processes (the
API wired to the catalog API as ``darkroom serve`` does), with one API key
(scopes ``upload``, ``read``). After one warm-up upload it fires ``--uploads``
uploads from ``--clients`` concurrent clients, each its own connection (see
:mod:`darkroom_dev.load` for the galleries, the photos and the retry policy),
and prints: accepted / refused uploads (by status and reason) and retries;
complete / failed (by reason) / dead-lettered / lost jobs and duplicate
``cataloged`` records; the upload API's throughput and the end-to-end
throughput; upload → cataloged latency p50/p90/p99/max; the API's own response
time.

    .venv/bin/python bench/load_bench.py [--uploads 1000] [--clients 100]
        [--bootstrap HOST:PORT] [--render-workers 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from darkroom_dev.load import PHOTOS, LoadReport, run_load, start_upload_api
from darkroom_dev.local.jars import repo_root
from darkroom_dev.local.kafka import LocalKafka
from darkroom_dev.local.pipeline import start_local_pipeline
from darkroom_dev.testing.kafka import free_ports

CORPUS = Path(os.environ.get("DARKROOM_CORPUS") or repo_root().parent / "shared" / "corpus")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uploads", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument(
        "--render-workers", type=int, default=2, help="render processes (one consumer group)"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds for the jobs")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="darkroom-load-bench-"))
    broker = None
    bootstrap = args.bootstrap
    if not bootstrap:
        port, controller = free_ports(2)
        broker = LocalKafka(work / "kafka", port=port, controller_port=controller)
        bootstrap = broker.start(timeout_s=120)
    key = secrets.token_urlsafe(32)
    keys = [{"name": "load", "key": key, "scopes": ["upload", "read"]}]
    photos = [CORPUS / p for p in PHOTOS]
    pipeline = None
    try:
        pipeline = start_local_pipeline(
            bootstrap,
            f"load{uuid.uuid4().hex[:6]}.",
            work / "data",
            env={
                "DARKROOM_AUTH__API_KEYS": json.dumps(keys),
                "DARKROOM_LOG_LEVEL": os.environ.get("DARKROOM_LOG_LEVEL", "WARNING"),
            },
        )
        for _ in range(args.render_workers - 1):
            pipeline.services.start("variants")
        api = start_upload_api(pipeline)

        def load(uploads: int, clients: int, run: str) -> LoadReport:
            report = asyncio.run(
                run_load(
                    api,
                    key,
                    pipeline,
                    uploads=uploads,
                    clients=clients,
                    photos=photos,
                    run=run,
                    timeout_s=args.timeout,
                    should_abort=pipeline.died,
                )
            )
            if report.figures()["complete"] != uploads:
                raise SystemExit("\n".join(report.lines()))
            return report

        started = time.monotonic()
        load(1, 1, "warmup")  # the services join their consumer groups and warm up
        print(f"warm-up upload cataloged in {time.monotonic() - started:.1f} s", flush=True)
        started = time.monotonic()
        report = load(args.uploads, args.clients, f"load{uuid.uuid4().hex[:6]}")
        print(
            f"render workers: {args.render_workers}; profile: default; "
            f"run wall time {time.monotonic() - started:.1f} s",
            flush=True,
        )
        print("\n".join(report.lines()), flush=True)
        if args.json:
            args.json.write_text(json.dumps(report.figures(), indent=2))
    finally:
        if pipeline is not None:
            pipeline.stop()
        if broker is not None:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
