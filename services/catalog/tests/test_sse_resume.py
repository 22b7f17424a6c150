"""SSE resume: ``Last-Event-ID`` (header or ``?last_event_id=``) on a real worker and broker.

Event ids are the job's table version (carried in the changelog), so a reconnect gets
only newer states: no repeat, and the latest snapshot folds in what it missed.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import aiohttp
import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(120)]


def _auth(svc: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {svc.keys['read']}"}


async def _events(
    svc: Any,
    job_id: str,
    *,
    count: int | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], list[tuple[int, str, dict[str, Any]]]]:
    """Open the stream; read ``count`` events (or to its end); return status, headers, events."""
    out: list[tuple[int, str, dict[str, Any]]] = []
    url = f"{svc.base}/v1/jobs/{job_id}/events{query}"
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers={**_auth(svc), **(headers or {})}) as r,
    ):
        if r.status != 200:
            return r.status, dict(r.headers), out
        ident, event, data = -1, "message", ""
        async for raw in r.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("id: "):
                ident = int(line[4:])
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and data:
                out.append((ident, event, json.loads(data)))
                ident, event, data = -1, "message", ""
                if count is not None and len(out) >= count:
                    break
        return r.status, dict(r.headers), out


async def _until_status(svc: Any, job_id: str, wanted: str) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            async with http.get(f"{svc.base}/v1/jobs/{job_id}", headers=_auth(svc)) as r:
                if r.status == 200 and (await r.json())["status"] == wanted:
                    return
            await asyncio.sleep(0.2)
    raise AssertionError(f"{job_id} never {wanted}")


async def test_reconnect_with_last_event_id_gets_only_newer_states(catalog_service, flow):
    svc = catalog_service
    f = flow(f"img-{uuid.uuid4().hex[:8]}", gallery_id=f"g-{uuid.uuid4().hex[:8]}")
    f.ids["job_id"] = f.job_id = f.image_id
    await svc.produce([f.uploaded(), f.validated()])
    await _until_status(svc, f.job_id, "processing")
    status, headers, first = await _events(svc, f.job_id, count=1)
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Accel-Buffering"] == "no"
    [(seen_id, _, state)] = first
    assert state["status"] == "processing"
    assert seen_id >= 2  # uploaded and validated were two writes

    # Away while two variants are requested and one is done; back with Last-Event-ID.
    await svc.produce([f.requested("thumb", 2), f.requested("medium", 2), f.done("thumb")])
    await asyncio.sleep(1.0)
    resume = asyncio.create_task(_events(svc, f.job_id, headers={"Last-Event-ID": str(seen_id)}))
    await asyncio.sleep(1.0)
    await svc.produce([f.done("medium")])
    status, _, resumed = await asyncio.wait_for(resume, 30)
    assert status == 200
    ids = [i for i, _, _ in resumed]
    assert ids, resumed
    assert ids[0] > seen_id, ids
    assert ids == sorted(set(ids)), f"an id repeated or went back: {ids}"
    done = [sum(v["status"] == "done" for v in s["variants"].values()) for _, _, s in resumed]
    assert done[0] >= 1  # the state it missed is folded into the first event
    assert resumed[-1][2]["status"] == "complete"

    # Already has the terminal state: 204 tells EventSource to stop reconnecting.
    status, _, nothing = await _events(svc, f.job_id, headers={"Last-Event-ID": str(ids[-1])})
    assert (status, nothing) == (204, [])
    # The polyfill form: ?last_event_id=
    status, _, again = await _events(svc, f.job_id, query=f"?last_event_id={seen_id}")
    assert status == 200
    assert [i for i, _, _ in again] == [ids[-1]]
    # Garbage is refused in the shared error shape.
    status, headers, _ = await _events(svc, f.job_id, headers={"Last-Event-ID": "abc"})
    assert status == 400
    assert headers["Content-Type"].startswith("application/json")
