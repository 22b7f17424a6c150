"""DELETE /v1/images/{id}: every stage removes what it holds; nothing is left in the store."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from .conftest import CORPUS, run_files, start_pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

KEY = "delete-test-admin-key-0123456789abcdef"


def test_delete_removes_original_master_variants_and_the_gallery_entry(kafka_bootstrap, tmp_path):
    env = {"DARKROOM_AUTH__API_KEYS": json.dumps([{"name": "t", "key": KEY, "scopes": ["admin"]}])}
    pipeline = start_pipeline(kafka_bootstrap, tmp_path, env=env)
    try:
        done = run_files(
            pipeline,
            [CORPUS / "raw/cr2_canon_img5952.cr2", CORPUS / "orientation/Portrait_2.jpg"],
            gallery="del",
        )
        assert {end.status for _, end in done.values()} == {"complete"}
        raw, _ = done["cr2_canon_img5952.cr2"]
        kept, _ = done["Portrait_2.jpg"]
        prefixes = [f"{kind}/del/{raw.image_id}/" for kind in ("originals", "masters", "variants")]
        store = pipeline.store

        async def keys(prefix: str) -> list[str]:
            return [i.key async for i in store.list(prefix)]

        assert all(asyncio.run(keys(p)) for p in prefixes)  # original, master and variants exist
        catalog = next(p for p in pipeline.services.processes if p.name == "catalog")
        base = f"http://127.0.0.1:{catalog.web_port}"
        auth = {"Authorization": f"Bearer {KEY}"}
        r = httpx.delete(f"{base}/v1/images/{raw.image_id}", headers=auth, timeout=10)
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(asyncio.run(keys(p)) for p in prefixes):
            time.sleep(0.5)
        assert not [k for p in prefixes for k in asyncio.run(keys(p))]
        assert asyncio.run(keys(f"variants/del/{kept.image_id}/"))  # the other image is untouched
        gallery = httpx.get(f"{base}/v1/galleries/del/images", headers=auth, timeout=10).json()
        assert [
            i["image_id"] for i in gallery["images"] if i.get("status", "complete") == "complete"
        ] == [kept.image_id]
        assert (
            httpx.get(f"{base}/v1/images/{raw.image_id}", headers=auth, timeout=10).status_code
            == 404
        )
        # Deleting again is harmless.
        assert (
            httpx.delete(f"{base}/v1/images/{raw.image_id}", headers=auth, timeout=10).status_code
            == 202
        )
    finally:
        pipeline.stop()
