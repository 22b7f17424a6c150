"""The catalog API while a catalog worker is SIGKILLed: 503 with Retry-After, never a 500.

Two catalog workers (each its own data folder) share 8 partitions; real photos go
through the whole pipeline; one worker is killed and the survivor is asked, every
100 ms, for a key of every partition (jobs, images, galleries, the gallery page, the
job event stream) until every key answers 200 again. Every non-200 must be 503 in the
shared JSON error shape with ``Retry-After``; afterwards every key answers what it
answered before the kill. ``DARKROOM_FAILOVER_HAMMER_S`` (default 30) bounds the
hammering. The figures are printed.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from darkroom_dev.local.pipeline import LocalPipeline
from darkroom_runtime.tables import partition_for

from .faults.checks import API_ENV, PHOTOS, READ_KEY

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 8
HAMMER_S = float(os.environ.get("DARKROOM_FAILOVER_HAMMER_S", "30"))
AUTH = {"Authorization": f"Bearer {READ_KEY}"}


def _paths(jobs: list[str], galleries: list[str]) -> list[str]:
    paths = []
    for job in jobs:
        paths += [f"/v1/jobs/{job}", f"/v1/images/{job}"]
    for gallery in galleries:
        paths += [f"/v1/galleries/{gallery}/images", f"/galleries/{gallery}"]
    return paths


def _stable(path: str, body: Any) -> Any:
    """The part of an answer that must survive the failover (URLs and times may differ)."""
    if path.startswith("/galleries/"):
        return None  # HTML, compared through the JSON listing
    if "images" in body and isinstance(body["images"], list):
        return sorted((i["image_id"], i["status"]) for i in body["images"])
    return (body.get("status"), body.get("attempts"), sorted(body.get("variants") or {}))


async def _snapshot(http: httpx.AsyncClient, paths: list[str]) -> dict[str, Any]:
    out = {}
    for path in paths:
        r = await http.get(path, headers=AUTH)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        out[path] = _stable(path, r.json() if "json" in r.headers["content-type"] else None)
    return out


def test_survivor_answers_503_with_retry_after_while_the_owner_is_dead(kafka_bootstrap, tmp_path):
    pipeline = LocalPipeline(
        kafka_bootstrap,
        f"fo{uuid.uuid4().hex[:8]}.",
        tmp_path,
        partitions=PARTITIONS,
        env={**API_ENV, "DARKROOM_RETRY_BASE_DELAY_S": "0.05", "DARKROOM_SESSION_TIMEOUT_S": "10"},
    )
    asyncio.run(pipeline.create_topics())
    pipeline.start()
    second = pipeline.services.start(
        "catalog", extra_env={"DARKROOM_DATA_DIR": str(tmp_path / "state2")}
    )
    try:
        # Galleries spread over the partitions; one photo each (8 uploads).
        galleries: list[str] = []
        for n in range(200):
            g = f"fo-{n}"
            if partition_for(g.encode(), PARTITIONS) not in {
                partition_for(x.encode(), PARTITIONS) for x in galleries
            }:
                galleries.append(g)
            if len(galleries) == PARTITIONS:
                break
        results = []
        for g, photo in zip(galleries, PHOTOS[4:], strict=True):
            results += asyncio.run(pipeline.run([photo], gallery=g, timeout_s=300))
        assert all(end is not None for _, end in results), [
            u.filename for u, e in results if e is None
        ]
        jobs = [u.job_id for u, _ in results]
        paths = _paths(jobs, galleries)
        first = next(p for p in pipeline.services.processes if p.name == "catalog")
        survivor = f"http://127.0.0.1:{second.web_port}"

        async def scenario() -> dict[str, Any]:
            async with httpx.AsyncClient(base_url=survivor, timeout=15) as http:
                deadline = time.monotonic() + 120
                while True:  # both workers ready and every key answering
                    try:
                        before = await _snapshot(http, paths)
                        break
                    except AssertionError:
                        assert time.monotonic() < deadline, "the catalog never served every key"
                        await asyncio.sleep(1)
                pipeline.services.kill(first)
                killed = time.monotonic()
                statuses: Counter[int] = Counter()
                bad: list[str] = []
                all_ok_at: float | None = None
                while time.monotonic() - killed < HAMMER_S:
                    round_ok = True
                    for path in [*paths, *(f"/v1/jobs/{j}/events" for j in jobs)]:
                        r = await http.get(path, headers=AUTH)
                        statuses[r.status_code] += 1
                        if r.status_code == 200:
                            continue
                        round_ok = False
                        ctype = r.headers.get("content-type", "")
                        try:
                            body = r.json()
                        except ValueError:
                            body = None
                        if (
                            r.status_code != 503
                            or "Retry-After" not in r.headers
                            or not ctype.startswith("application/json")
                            or not isinstance(body, dict)
                            or body.get("reason") not in ("owner_unavailable", "not_ready")
                            or not body.get("message")
                        ):
                            bad.append(f"{path}: {r.status_code} {ctype} {r.text[:200]}")
                    if round_ok and all_ok_at is None:
                        all_ok_at = time.monotonic() - killed
                        if all_ok_at < HAMMER_S:
                            break
                    await asyncio.sleep(0.1)
                after = await _snapshot(http, paths)
                return {
                    "before": before,
                    "after": after,
                    "statuses": statuses,
                    "bad": bad,
                    "all_ok_s": all_ok_at,
                }

        out = asyncio.run(scenario())
    finally:
        pipeline.stop()
    statuses = out["statuses"]
    print(
        f"\ncatalog failover: {sum(statuses.values())} requests after the kill, "
        f"{statuses.get(503, 0)} answered 503, {statuses.get(200, 0)} 200, others "
        f"{ {k: v for k, v in statuses.items() if k not in (200, 503)} }; every key 200 again "
        f"{out['all_ok_s']:.1f} s after the SIGKILL"
        if out["all_ok_s"] is not None
        else f"\ncatalog failover: {dict(statuses)}; not all 200 within {HAMMER_S} s"
    )
    assert not out["bad"], out["bad"][:10]
    assert statuses.get(503, 0) > 0, "the kill never showed: the survivor answered everything"
    assert out["all_ok_s"] is not None, f"not every key answered 200 within {HAMMER_S} s"
    assert out["after"] == out["before"]
