"""The rollout report built from a journal: JSON shape, per-minion results, escaped self-contained HTML."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.report import build_report, render_html
from pipeline.rollout import load_progress, start_rollout
from pipeline.salt_client.scripted import Behavior, ScriptedSaltClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rollout"))
from rollout_helpers import PREVIOUS, RELEASE, TEST_FLEET, FakeClock, FakeServing, Harness, make_config  # noqa: E402


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(make_config(), tmp_path / "state", FakeClock(), FakeServing(), [])


EVIL = '<script>alert("x")</script> & "quotes"'


def _halted_report(harness: Harness) -> dict[str, Any]:
    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        if fun == "state.apply" and minion == "test-db-1" and kwarg["saltenv"] == RELEASE:
            return Behavior(ret={"pkg_|-x_|-x_|-installed": {"result": False, "comment": EVIL, "duration": 5.0}}, retcode=2)
        return None

    result = start_rollout(harness.ctx("test", ScriptedSaltClient(TEST_FLEET, script=script)), RELEASE, commit="c0ffee")
    return json.loads(result.report_path.read_text(encoding="utf-8"))


def test_report_names_release_environment_outcome_and_each_minion_with_its_jid(harness: Harness) -> None:
    report = _halted_report(harness)
    assert report["schema"] == "saltpipe-rollout-report/1"
    assert (report["release"], report["environment"], report["outcome"]) == (RELEASE, "test", "rolled_back")
    assert report["previous_release"] == PREVIOUS and report["commit"] == "c0ffee"
    results = {m["id"]: m for b in report["batches"] for m in b["minions"]}
    assert {k: v["result"] for k, v in results.items()} == {
        "test-web-1": "rolled_back", "test-db-1": "rolled_back", "test-web-2": "untouched"}
    assert results["test-db-1"]["jid"] and results["test-web-2"]["jid"] is None
    assert results["test-db-1"]["steps"]["apply"]["status"] == "failed"
    assert results["test-db-1"]["steps"]["rollback_apply"]["status"] == "ok"
    assert report["halted"]["batch"] == 1
    # Audit trail: commit -> release -> jid -> counts, forward and rollback jobs alike.
    steps = [(a["batch"], a["step"], a["release"]) for a in report["audit"]]
    assert steps == [(0, "sync", RELEASE), (0, "apply", RELEASE), (0, "rollback_sync", PREVIOUS),
                     (0, "rollback_apply", PREVIOUS), (1, "sync", RELEASE), (1, "apply", RELEASE),
                     (1, "rollback_sync", PREVIOUS), (1, "rollback_apply", PREVIOUS)]
    assert all(a["commit"] == "c0ffee" and a["jid"] for a in report["audit"])
    assert next(a for a in report["audit"] if a["batch"] == 1 and a["step"] == "apply")["failed"] == 1


def test_report_can_be_rebuilt_from_the_journal_alone(harness: Harness) -> None:
    report = _halted_report(harness)
    progress = load_progress(harness.ctx("test", ScriptedSaltClient({})).store, "test", report["rollout_id"])
    assert build_report(progress) == report


def test_html_is_self_contained_and_escaped(harness: Harness) -> None:
    report = _halted_report(harness)
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "alert(&quot;x&quot;)" in page and "&amp; &quot;quotes&quot;" in page
    assert not re.search(r"(src|href)=", page)  # no external resources
    for minion in TEST_FLEET:
        assert minion in page
    assert page.count("<table>") == 1 + 3 + 1  # results, one per batch, audit trail
    assert "rolled_back" in page and "untouched" in page and "c0ffee" in page


def test_html_of_an_unfinished_rollout(harness: Harness) -> None:
    report = _halted_report(harness)
    report["outcome"] = None
    report["state"] = "running"
    assert "running" in render_html(report)
