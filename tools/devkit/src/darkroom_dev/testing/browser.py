"""pytest plugin: a headless Chromium (Debian's chromium + chromedriver) driven by selenium.

``tools/bootstrap/chromium.sh`` installs the browser. The ``browser`` fixture
skips when it is missing outside CI and fails under ``CI=true``. Selenium
Manager is kept offline: the driver is Debian's, never a download.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
T = TypeVar("T")


def require_chromium() -> None:
    """Skip the calling test when Chromium is missing, unless in CI where that is a failure."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but Chromium is missing: run tools/bootstrap/chromium.sh")
    pytest.skip("headless Chromium is not installed (run tools/bootstrap/chromium.sh)")


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium WebDriver, quit after the test."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(check: Callable[[], T], timeout_s: float = 20) -> T:
    """Poll ``check`` until it returns a truthy value; raise AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("the page did not reach the expected state")
        time.sleep(0.2)
