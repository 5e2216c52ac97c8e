"""The status page in a real browser: Debian's headless Chromium (selenium + chromedriver) loading the page of a
recorded real rollout that halted at its second batch and was rolled back. Checks the grid cells, the halted
batch's reason, a click through to a cell; screenshots go to reports/screenshots/ (CI artifacts).

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian: chromium, chromium-driver). Under CI=true a missing
browser fails with what to install; elsewhere the tests skip.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.web.server import ServerThread

CHROMIUM = Path(os.environ.get("SALTPIPE_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("SALTPIPE_CHROMEDRIVER", "/usr/bin/chromedriver"))
SCREENSHOTS = Path(__file__).resolve().parents[3] / "reports" / "screenshots"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900")


def _need_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401  # pylint: disable=unused-import,import-outside-toplevel
    except ImportError:
        missing.append("selenium (pip install -e '.[test]')")
    if missing:
        message = f"browser tests need {', '.join(missing)}: apt-get install chromium chromium-driver"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _need_browser()
    from selenium import webdriver  # pylint: disable=import-outside-toplevel
    from selenium.webdriver.chrome.service import Service  # pylint: disable=import-outside-toplevel

    profile = tempfile.mkdtemp(prefix="saltpipe-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def shot(driver: object, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot written to {path}"  # type: ignore[attr-defined]
    return path


def test_halted_rollout_grid_in_chromium(browser, server: ServerThread, recorded) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By  # pylint: disable=import-outside-toplevel

    summary = next(r for r in recorded.rollout_list() if r["outcome"] == "rolled_back")
    report = recorded.rollout("production", summary["rollout_id"])
    browser.get(f"{server.url}/rollouts/production/{summary['rollout_id']}")
    assert "rolled_back" in browser.find_element(By.ID, "outcome").text
    cells = browser.find_elements(By.CSS_SELECTOR, "a.cell[data-minion]")
    seen = {c.get_attribute("data-minion"): (c.get_attribute("data-result"), c.text) for c in cells}
    expected = {m["id"]: m["result"] for b in report["batches"] for m in b["minions"]}
    assert {m: r for m, (r, _) in seen.items()} == expected
    # The canary passed and was rolled back (tick + back arrow); batch 1's minion failed (cross + back arrow).
    canary = report["batches"][0]["minions"][0]["id"]
    broken = report["batches"][1]["minions"][0]["id"]
    assert seen[canary][1] == "\u2713\u21b6" and seen[broken][1] == "\u2717\u21b6"
    assert all(text == "\u00b7" for result, text in seen.values() if result == "untouched")
    # The halted batch row shows its status and the gate's reason, rendered (not just present in the source).
    row = browser.find_element(By.CSS_SELECTOR, 'tr.batch[data-batch="1"]')
    assert row.get_attribute("data-status") == "failed"
    reason = row.find_element(By.CSS_SELECTOR, ".batch-reason")
    assert reason.is_displayed() and reason.text == report["halted"]["reason"]
    assert browser.find_element(By.CSS_SELECTOR, ".halted-reason").is_displayed()
    later = browser.find_element(By.CSS_SELECTOR, 'tr.batch[data-batch="2"]')
    assert later.get_attribute("data-status") == "not_run"
    shot(browser, "rollout-halted")

    # Click the failed batch's cell: the minion's steps, the failed state.apply and its reason.
    row.find_element(By.CSS_SELECTOR, "a.cell").click()
    apply_row = browser.find_element(By.CSS_SELECTOR, 'tr[data-step="apply"]')
    assert "failed" in apply_row.text and "does-not-exist.conf" in apply_row.text
    shot(browser, "rollout-cell")


def test_overview_in_chromium(browser, server: ServerThread) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By  # pylint: disable=import-outside-toplevel

    browser.get(server.url + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, 'table.syndics[data-env="production"] tr[data-syndic]')
    assert [r.get_attribute("data-syndic") for r in rows] == ["syndic-prod-a", "syndic-prod-b"]
    assert all("rel-" in r.text for r in rows)
    shot(browser, "environments")
