"""The rollout report built from a journal: JSON shape, per-minion results, escaped self-contained HTML."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.rollout.report import build_report, render_html
from pipeline.rollout import RolloutRequest, load_progress, start_rollout
from scripted_client import Behavior, ScriptedSaltClient

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

    result = start_rollout(RolloutRequest(harness.ctx("test", ScriptedSaltClient(TEST_FLEET, script=script)), RELEASE, commit="c0ffee"))
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
    # Each row names the commit of the release it applied: the rollback's is not the new release's commit (the
    # harness's release store does not hold the previous release, so it is unknown here; see below).
    assert all(a["commit"] == ("c0ffee" if a["release"] == RELEASE else None) and a["jid"] for a in report["audit"])
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
    assert page.count("<table>") == 1 + 1 + 3 + 1 + 1  # results, schedule, one per batch, failed states, audit
    assert "rolled_back" in page and "untouched" in page and "c0ffee" in page


def test_html_of_an_unfinished_rollout(harness: Harness) -> None:
    report = _halted_report(harness)
    report["outcome"] = None
    report["state"] = "running"
    assert "running" in render_html(report)


def _minion_row(page: str, minion: str) -> str:
    return next(row for row in page.split("<tr>") if row.startswith(f"<td>{minion}</td>"))


def test_html_shows_why_a_minion_failed_inline_with_its_output_on_demand(harness: Harness) -> None:
    page = render_html(_halted_report(harness))
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;"
    assert 'title="' not in page  # nothing hides in a tooltip
    found = re.search(r'<tr class="why">(.*?)</td></tr>\n(?:<tr><td>|</table>)', page, re.S)
    assert found is not None
    why = found.group(1)
    assert "apply failed" in why
    # The failed state: its function, its id, Salt's comment, its changes.
    assert "<td><code>pkg.installed</code></td><td><code>x</code></td>" in why and f"<td>{escaped}</td>" in why
    assert "<details><summary>output of test-db-1 (apply" in why and "<pre>" in why and "pkg_|-x_|-x_|-installed" in why
    assert "retcode 2" in why


def test_html_counts_a_failed_minion_that_was_rolled_back_as_failed(harness: Harness) -> None:
    report = _halted_report(harness)
    db = next(m for b in report["batches"] for m in b["minions"] if m["id"] == "test-db-1")
    web = next(m for b in report["batches"] for m in b["minions"] if m["id"] == "test-web-1")
    assert (db["before_rollback"], web["before_rollback"]) == ("failed", "succeeded")
    assert report["totals"]["failed"] == 0 and report["totals"]["rolled_back"] == 2  # the JSON partition stays
    page = render_html(report)
    results = page.split("<h2>Results</h2>", 1)[1].split("</table>", 1)[0]
    headers = re.findall(r"<th>([a-z_]+)</th>", results)
    cells = re.findall(r'<td class="c">(.*?)</td>', results)
    assert dict(zip(headers, cells))["failed"].startswith("1 ") and "1 then rolled back" in results
    assert "after it failed" in _minion_row(page, "test-db-1")


def test_html_shows_the_schedule_with_its_skipped_entries_and_the_previous_release(harness: Harness) -> None:
    report = _halted_report(harness)
    report["skipped_schedule_entries"] = [["5%", "5% of 6 minions is 1, reached already"]]
    page = render_html(report)
    schedule = page.split("<h2>Schedule</h2>", 1)[1].split("</table>", 1)[0]
    assert "<code>5%</code>" in schedule and "skipped" in schedule and "5% of 6 minions is 1, reached already" in schedule
    assert f"previous release <code>{PREVIOUS}</code>" in page
    report["previous_release"] = None
    assert "previous release: none (the first release of this environment)" in render_html(report)
    assert f"Halted</b> at {report['halted']['batch_name']}:" in page


def test_html_shows_each_jobs_time_once(harness: Harness) -> None:
    report = _halted_report(harness)
    db = next(m for b in report["batches"] for m in b["minions"] if m["id"] == "test-db-1")
    assert db["steps"]["sync"]["jid"] == db["steps"]["apply"]["jid"]  # one job ran both
    row = _minion_row(render_html(report), "test-db-1")
    jobs = {s["jid"] for s in db["steps"].values() if s.get("elapsed_s") is not None}
    assert row.count('s</span>') == len(jobs) == 2  # the forward job and the rollback job, once each


def test_rollback_audit_rows_name_the_previous_releases_commit(harness: Harness) -> None:
    report = _halted_report(harness)
    progress = load_progress(harness.ctx("test", ScriptedSaltClient({})).store, "test", report["rollout_id"])
    rebuilt = build_report(progress, {PREVIOUS: "beefcafe"})
    assert {(a["release"], a["commit"]) for a in rebuilt["audit"]} == {(RELEASE, "c0ffee"), (PREVIOUS, "beefcafe")}
    # In the page too: each rollback row of the audit trail starts with the previous release's own commit.
    trail = render_html(rebuilt).split("<h2>Audit trail</h2>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>[^<]*</td><td>([^<]*)</td>", trail)
    rollback_rows = [(commit, release) for commit, release, step in rows if step.startswith("rollback")]
    assert rollback_rows and set(rollback_rows) == {("beefcafe", PREVIOUS)}
    assert {(commit, release) for commit, release, step in rows if not step.startswith("rollback")} == {
        ("c0ffee", RELEASE)}


def test_html_links_the_other_reports_of_the_flow(harness: Harness, tmp_path: Path) -> None:
    from pipeline.rollout.report import sibling_reports

    report = _halted_report(harness)
    folder = tmp_path / "reports"
    folder.mkdir()
    for name in ("01-first-test", "02-second-test"):
        (folder / f"{name}.json").write_text(json.dumps(report), encoding="utf-8")
        (folder / f"{name}.html").write_text("<html></html>", encoding="utf-8")
    (folder / "notes.json").write_text("{}", encoding="utf-8")  # not a report: not linked
    related = sibling_reports(folder / "02-second-test.html")
    assert [href for _, href in related] == ["01-first-test.html"]
    page = render_html(report, related)
    assert '<a href="01-first-test.html">' in page and f"to test: rolled_back ({report['rollout_id']})" in page
