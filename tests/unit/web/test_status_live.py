"""The live view: the recorded rollout replayed as if it were running - its journal cut after batch 1 started -
then completed while a headless Chromium watches the page update itself (polling the grid)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from recorded_state import load
from test_status_browser import browser, shot  # noqa: F401  # pylint: disable=unused-import  # the fixture

from pipeline.config import load_config
from pipeline.web.app import create_app
from pipeline.web.data import StatusData
from pipeline.web.server import ServerThread


class LiveRollout:
    """A rollout directory whose journal is fed back line by line (what the executor would append)."""

    def __init__(self, state_dir: Path) -> None:
        env_dir = state_dir / "rollouts" / "production"
        self.dir = next(env_dir.glob("*/plan.json")).parent
        self.env_dir = env_dir
        self.journal = self.dir / "journal.jsonl"
        self.history = (env_dir / "history.jsonl").read_text()
        lines = self.journal.read_text().splitlines(keepends=True)
        cut = next(i for i, line in enumerate(lines)
                   if json.loads(line)["event"] == "batch_started" and json.loads(line)["batch"] == 1) + 1
        self.rest = lines[cut:]
        self.journal.write_text("".join(lines[:cut]))
        (self.dir / "report.json").unlink()
        (env_dir / "history.jsonl").unlink()
        (env_dir / "current").write_text(self.dir.name + "\n")

    @property
    def rollout_id(self) -> str:
        return self.dir.name

    def finish(self) -> None:
        with open(self.journal, "a", encoding="utf-8") as fh:
            fh.writelines(self.rest)
        (self.env_dir / "history.jsonl").write_text(self.history)
        (self.env_dir / "current").unlink()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[ServerThread, LiveRollout]]:
    cfg = load_config(load(tmp_path))
    rollout = LiveRollout(Path(cfg.state_dir))
    with ServerThread(create_app(StatusData(cfg, Path(cfg.state_dir)))) as server:
        yield server, rollout


def test_a_running_rollout_is_live(live: tuple[ServerThread, LiveRollout]) -> None:
    server, rollout = live
    page = requests.get(f"{server.url}/rollouts/production/{rollout.rollout_id}", timeout=30).text
    assert 'data-live="yes"' in page and "/grid" in page
    grid = requests.get(f"{server.url}/rollouts/production/{rollout.rollout_id}/grid", timeout=30).text
    assert 'data-finished="no"' in grid and 'data-result="pending"' in grid
    overview = requests.get(f"{server.url}/?format=json", timeout=30).json()
    assert [r["rollout_id"] for r in overview["running"]] == [rollout.rollout_id]
    rollout.finish()
    grid = requests.get(f"{server.url}/rollouts/production/{rollout.rollout_id}/grid", timeout=30).text
    assert 'data-finished="yes"' in grid and 'data-result="pending"' not in grid


def test_the_page_follows_the_rollout_in_chromium(browser, live) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    # pylint: disable=import-outside-toplevel
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, rollout = live
    browser.get(f"{server.url}/rollouts/production/{rollout.rollout_id}")
    running = browser.find_element(By.CSS_SELECTOR, 'tr.batch[data-batch="1"] a.cell')
    assert running.get_attribute("data-result") == "pending"
    assert "running" in browser.find_element(By.ID, "outcome").text
    shot(browser, "rollout-live")
    rollout.finish()  # the executor writes the rest: the gate fails, halt, rollback, finished
    # The page reloads itself once the grid says finished. A command that meets the reload fails in passing: an
    # element found just before it goes stale or is briefly absent, and chromedriver may answer "cannot determine
    # loading status from target frame detached" (a plain WebDriverException). That is the page working, so the
    # wait tries again; a browser that is really gone fails every try and the wait with them. The deadline is
    # generous because a loaded CI machine makes Chromium slow; the wait ends once the reloaded page has loaded
    # and shows the outcome, and that page polls no more (it is finished), so what follows reads a still page.
    WebDriverWait(browser, 60, poll_frequency=0.25, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
        and "rolled_back" in d.find_element(By.ID, "outcome").text)
    row = browser.find_element(By.CSS_SELECTOR, 'tr.batch[data-batch="1"]')
    assert row.get_attribute("data-status") == "failed" and row.find_element(By.CSS_SELECTOR, ".batch-reason").text
