"""Headless chromium for the map's browser tests (Debian's chromium + chromium-driver, selenium)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


def chromium() -> Iterator[object]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium and chromium-driver are not installed (scripts/install.sh installs them as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # software WebGL (SwiftShader): MapLibre draws without a GPU
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
        opts.add_argument(arg)
    opts.add_argument("--use-angle=swiftshader")
    opts.add_argument("--enable-unsafe-swiftshader")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver, script: str, timeout_s: float = 60) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.25)
    status = driver.execute_script("return document.getElementById('status').textContent")
    raise AssertionError(f"page never satisfied: {script} (status: {status!r})")


def choose_region(driver, name: str) -> None:
    """Pick ``name`` in the page's region list (a no-op when it is already shown)."""
    script = "const r = document.getElementById('region'); if (r.value !== arguments[0]) { r.value = arguments[0]; r.dispatchEvent(new Event('change')); }"
    driver.execute_script(script, name)
