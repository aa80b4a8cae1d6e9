"""Headless Chromium from Debian's packages (``chromium``, ``chromium-driver``)
driven by selenium, for the cluster page tests (integration and e2e).

The driver path is given explicitly so selenium never tries to download a
browser or a driver (there is no internet here)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def chrome(width: int = 1400, height: int = 1100) -> webdriver.Chrome:
    binary = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--disable-extensions", f"--window-size={width},{height}"):
        opts.add_argument(arg)
    return webdriver.Chrome(options=opts, service=Service(executable_path=driver))


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    # The whole page, not just the viewport: the tables are below the picture.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, max(900, min(int(height) + 40, 3000)))
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))
    return path


def peer_rows(driver: webdriver.Chrome) -> dict[str, dict[str, str]]:
    """name -> {state, peer_id, text} of every row of the peer table, read in one
    script: the live page re-renders the table, so element handles go stale."""
    return driver.execute_script(
        "const out = {};"
        "document.querySelectorAll('#peers tbody tr[data-peer-id]').forEach((r) => {"
        "  out[r.dataset.name] = {state: r.dataset.state, peer_id: r.dataset.peerId, text: r.innerText}; });"
        "return out;")
