"""Formatters: the JSON shape, Code Quality fingerprints that survive unrelated edits, JUnit that parses."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pipeline.errors import UsageError
from pipeline.findings import Finding, Report, Severity, WaivedFinding
from pipeline.formatters import get_formatter, names
from pipeline.policy.check import PolicyCheckOptions, check_paths

FINDINGS = (
    Finding("no-cmd-module", Severity.ERROR, "states/app/init.sls", 7, "state cmd.run runs shell commands", state_id="restart", key="cmd.run"),
    Finding("include-cycle", Severity.WARNING, "states/app/init.sls", 2, "include cycle app -> web -> app"),
    Finding("render-stubbed-call", Severity.INFO, "states/web/init.sls", 3, "salt['network.ip_addrs'] was not run"),
)
REPORT = Report(
    tool="saltpipe lint",
    findings=FINDINGS,
    waived=(WaivedFinding(Finding("scheduled-command", Severity.ERROR, "states/backup.sls", 4, "cron"), "vendor agent", "wli", "2026-12-31"),),
    checked=("states/app/init.sls", "states/web/init.sls", "states/clean.sls"),
)


def test_registered_formats() -> None:
    assert {"text", "json", "codequality", "junit"} <= set(names())
    with pytest.raises(UsageError, match="unknown output format"):
        get_formatter("yaml")


def test_json_shape() -> None:
    data = json.loads(get_formatter("json").format(REPORT))
    assert set(data) >= {"findings", "waived", "summary", "security_review_required"}
    for item in data["findings"]:
        assert {"rule", "severity", "path", "line", "message"} <= set(item)
        assert item["severity"] in {"error", "warning", "info"}
        assert isinstance(item["line"], int) and item["line"] >= 1
    assert data["findings"][0] == {"rule": "include-cycle", "severity": "warning", "path": "states/app/init.sls", "line": 2, "message": "include cycle app -> web -> app"}
    assert data["findings"][1]["state_id"] == "restart"
    assert data["summary"] == {"error": 1, "warning": 1, "info": 1, "waived": 1, "checked": 3}
    assert data["waived"][0]["waiver"] == {"justification": "vendor agent", "owner": "wli", "expires": "2026-12-31"}
    assert data["ok"] is False


def test_text_groups_by_file_and_ends_with_the_verdict() -> None:
    text = get_formatter("text").format(REPORT)
    lines = text.splitlines()
    assert lines[0] == "states/app/init.sls" and lines[1].split()[:3] == ["2", "warning", "include-cycle"]
    assert "states/web/init.sls" in lines
    assert lines[-1] == "saltpipe lint: FAILED: 1 error, 1 warning, 1 info (1 waived) in 3 files"


def test_codequality_shape_and_severities() -> None:
    issues = json.loads(get_formatter("codequality").format(REPORT))
    assert [i["check_name"] for i in issues] == ["include-cycle", "no-cmd-module", "render-stubbed-call"]
    for issue in issues:
        assert set(issue) >= {"description", "check_name", "fingerprint", "severity", "location"}
        assert issue["location"]["lines"]["begin"] >= 1
    assert [i["severity"] for i in issues] == ["minor", "critical", "info"]
    assert len({i["fingerprint"] for i in issues}) == 3


def test_codequality_fingerprints_unique_for_identical_findings() -> None:
    twins = Report("t", findings=tuple(Finding("shell-requisite", Severity.ERROR, "a.sls", n, "onlyif runs a shell command", key="onlyif") for n in (3, 9)))
    fps = [i["fingerprint"] for i in json.loads(get_formatter("codequality").format(twins))]
    assert len(set(fps)) == 2


def test_codequality_fingerprints_stable_when_unrelated_lines_are_added_above(tmp_path: Path) -> None:
    body = (
        "restart:\n  cmd.run:\n    - name: systemctl restart app\n    - unless: pgrep maint\n\n"
        "{%- set built = salt['cmd' ~ '.run']('id') %}\n"
    )
    sls = tmp_path / "app.sls"
    sls.write_text(body)

    def report() -> list[dict]:
        result = check_paths(PolicyCheckOptions(paths=(sls,), repo=tmp_path))
        return json.loads(get_formatter("codequality").format(result))

    before = report()
    sls.write_text("# a comment\nmotd:\n  file.managed:\n    - name: /etc/motd\n\n" + body)
    after = report()
    assert len(before) >= 3
    assert sorted(i["check_name"] for i in before) == sorted(i["check_name"] for i in after)
    assert sorted(i["fingerprint"] for i in before) == sorted(i["fingerprint"] for i in after)
    assert {i["location"]["lines"]["begin"] for i in before} != {i["location"]["lines"]["begin"] for i in after}


def test_junit_parses_with_a_failure_per_file_with_errors() -> None:
    root = ET.fromstring(get_formatter("junit").format(REPORT))
    suite = root.find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"states/app/init.sls", "states/web/init.sls", "states/clean.sls"}
    assert suite.get("tests") == "3" and suite.get("failures") == "1"
    failure = cases["states/app/init.sls"].find("failure")
    assert failure is not None and failure.get("type") == "no-cmd-module" and "states/app/init.sls:7" in (failure.text or "")
    assert cases["states/web/init.sls"].find("failure") is None
    assert "render-stubbed-call" in (cases["states/web/init.sls"].findtext("system-out") or "")
    assert cases["states/clean.sls"].find("failure") is None


def test_finding_validation() -> None:
    with pytest.raises(ValueError, match="line"):
        Finding("no-cmd-module", Severity.ERROR, "a.sls", 0, "x")
    with pytest.raises(ValueError, match="kebab"):
        Finding("No_Cmd", Severity.ERROR, "a.sls", 1, "x")
    assert Finding("no-cmd-module", "warning", "a.sls", 1, "x").severity is Severity.WARNING  # type: ignore[arg-type]
