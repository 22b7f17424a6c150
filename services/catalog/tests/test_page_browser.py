"""The gallery page in headless Chromium (Debian's chromium + chromedriver, driven by selenium).

Install them with ``tools/bootstrap/chromium.sh``. Skipped only when
/usr/bin/chromium is missing outside CI; with ``CI=true`` a missing browser fails.
"""

from __future__ import annotations

import asyncio
import struct
import uuid
import zlib

import aiohttp
import pytest

from darkroom_common.storage import FilesystemStore
from darkroom_dev.testing.browser import wait_for
from darkroom_schemas import UploadedV1

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(150)]


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid RGB PNG of one colour (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


async def _job(svc, job_id: str) -> dict:
    headers = {"Authorization": f"Bearer {svc.keys['read']}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{svc.base}/v1/jobs/{job_id}", headers=headers) as r,
    ):
        return await r.json() if r.status == 200 else {}


def test_gallery_page_shows_thumbnails_failures_and_retries(catalog_service, flow, browser):
    from selenium.webdriver.common.by import By

    svc = catalog_service
    gallery = f"g-{uuid.uuid4().hex[:8]}"
    good = flow(f"ok-{uuid.uuid4().hex[:8]}", gallery_id=gallery)
    bad = flow(f"bad-{uuid.uuid4().hex[:8]}", gallery_id=gallery)
    for f in (good, bad):
        f.ids["job_id"] = f.job_id = f.image_id
    store = FilesystemStore(svc.objects)
    asyncio.run(
        store.put(
            f"variants/{good.image_id}/thumb-spec01.webp",
            png(32, 20, (200, 40, 40)),
            content_type="image/png",
        )
    )
    asyncio.run(
        svc.produce(
            [
                *good.happy(("thumb",)),
                bad.uploaded(filename="broken.cr2"),
                bad.validated(
                    accepted=False,
                    reason_code="raw_no_image_data",
                    reason_message="the RAW file holds no image data",
                ),
            ]
        )
    )
    wait_for(lambda: asyncio.run(_job(svc, bad.job_id)).get("status") == "failed")
    wait_for(lambda: asyncio.run(_job(svc, good.job_id)).get("status") == "complete")

    url = f"{svc.base}/galleries/{gallery}?key={svc.keys['admin']}"

    def loaded():
        browser.get(url)
        return len(browser.find_elements(By.CSS_SELECTOR, "figure")) == 2

    wait_for(loaded)
    img = browser.find_element(By.CSS_SELECTOR, f'figure[data-image-id="{good.image_id}"] img')
    wait_for(lambda: browser.execute_script("return arguments[0].complete", img))
    assert browser.execute_script("return arguments[0].naturalWidth", img) == 32
    placeholder = browser.find_element(
        By.CSS_SELECTOR, f'figure[data-image-id="{good.image_id}"] .thumb'
    )
    assert placeholder.get_attribute("style").startswith("background")
    # Metadata opens on click.
    summary = browser.find_element(
        By.CSS_SELECTOR, f'figure[data-image-id="{good.image_id}"] summary'
    )
    summary.click()
    assert (
        "EOS R5"
        in browser.find_element(By.CSS_SELECTOR, f'figure[data-image-id="{good.image_id}"] dl').text
    )

    failed = browser.find_element(By.CSS_SELECTOR, f'figure[data-image-id="{bad.image_id}"]')
    assert "raw_no_image_data" in failed.text
    assert "the RAW file holds no image data" in failed.text
    assert failed.find_element(By.CSS_SELECTOR, ".status").text == "failed"
    failed.find_element(By.CSS_SELECTOR, "button.retry").click()
    wait_for(lambda: failed.find_element(By.CSS_SELECTOR, ".status").text == "queued")

    job = wait_for(lambda: asyncio.run(_job(svc, bad.job_id)) or None)
    wait_for(lambda: asyncio.run(_job(svc, bad.job_id)).get("attempts") == 2)
    job = asyncio.run(_job(svc, bad.job_id))
    assert job["status"] == "queued"
    uploads = [
        e
        for e in asyncio.run(svc.read("uploaded"))
        if isinstance(e, UploadedV1) and e.job_id == bad.job_id
    ]
    assert [(e.source, e.attempt, e.filename) for e in uploads] == [
        ("api", 1, "broken.cr2"),
        ("retry", 2, "broken.cr2"),
    ]
    # After the retry the page shows the job's live status.
    browser.get(f"{svc.base}/galleries/{gallery}")  # the cookie now authenticates
    again = browser.find_element(By.CSS_SELECTOR, f'figure[data-image-id="{bad.image_id}"]')
    assert again.find_element(By.CSS_SELECTOR, ".status").text == "queued"
    assert not again.find_elements(By.CSS_SELECTOR, "button.retry")
