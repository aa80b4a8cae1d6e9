"""The cluster page through the orchestrator's published port, in headless Chromium.

Shares the session cluster (tests/e2e/conftest.py): it lists whatever /peers
lists at the time, and restarts the generic worker it kills.
"""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

try:  # tests/e2e is not a package (no __init__.py): conftest is top-level
    from .conftest import Cluster, wait_for
except ImportError:
    from conftest import Cluster, wait_for  # type: ignore[no-redef]

from tests.browser import chrome, peer_rows, screenshot  # `python -m pytest` puts the repo root on sys.path

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def browser():
    driver = chrome()
    yield driver
    driver.quit()


def _rows(driver) -> dict[str, str]:
    return {name: row["state"] for name, row in peer_rows(driver).items()}


def _page_matches_peers(cluster: Cluster, driver) -> bool:
    listed = {p["name"] for p in cluster.peers()}
    shown = {n for n, s in _rows(driver).items() if s == "connected"}
    if listed != shown:
        raise RuntimeError(f"/peers {sorted(listed)} vs page {sorted(shown)}")
    return True


def test_page_lists_every_peer_and_invokes_a_tool(cluster: Cluster, browser) -> None:
    names = {n for n in cluster.running_worker_names()}
    cluster.wait_peers(present=names, timeout=120)
    browser.get(cluster.api + "/ui")
    wait_for(lambda: _page_matches_peers(cluster, browser), "the page to list every peer in /peers", 30, 0.5)
    assert names <= set(_rows(browser))

    Select(browser.find_element(By.ID, "tool")).select_by_visible_text("text_stats")
    browser.find_element(By.CSS_SELECTOR, '#fields [name="text"]').send_keys("to be or not to be")
    browser.find_element(By.ID, "token").send_keys(cluster.token)
    browser.find_element(By.ID, "run").click()
    answer = browser.find_element(By.ID, "answer")
    wait_for(lambda: answer.get_attribute("data-status") in ("ok", "error"), "the form's answer", 30, 0.5)
    assert answer.text.startswith("HTTP 200"), answer.text
    assert json.loads(answer.text.split("\n", 1)[1])["result"]["words"] == 6
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, '#calls tr[data-tool="text_stats"][data-outcome="ok"]'),
             "the call in the recent calls table", 10, 0.5)
    screenshot(browser, "cluster-page-e2e.png")


def test_killed_worker_turns_gone_in_the_page(cluster: Cluster, browser) -> None:
    victim = cluster.generic_workers()[0]
    name = cluster.agent_name(victim)
    browser.get(cluster.api + "/ui")
    wait_for(lambda: _rows(browser).get(name) == "connected", f"{name} connected on the page", 60, 0.5)
    browser.execute_script("window.__sameDocument = true")
    victim.kill()
    try:
        wait_for(lambda: _rows(browser).get(name) == "gone", f"{name} gone on the page", 60, 0.5)
        assert browser.execute_script("return window.__sameDocument === true"), "the page was reloaded"
    finally:
        victim.start()
    wait_for(lambda: _rows(browser).get(name) == "connected", f"{name} back on the page", 120, 1)
