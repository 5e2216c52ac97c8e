"""Formatters: the JSON shape, Code Quality fingerprints that survive unrelated edits, JUnit that parses."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pipeline.errors import UsageError
from pipeline.findings import Coverage, Finding, MinionCoverage, Report, Severity, UnrenderedBranch, WaivedFinding
from pipeline.formatters import get_formatter, names
from pipeline.lint.policy_check import PolicyCheckOptions, check_paths

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


COVERED = Report(
    tool="saltpipe lint",
    checked=("states/a.sls",),
    coverage=Coverage(
        sls=14,
        minions=(MinionCoverage("test/web-1", 12, 2), MinionCoverage("production/db-10", 11, 2, limited=1)),
        never_rendered=("states/z.sls", "states/b.sls"),
        unrendered_branches=tuple(UnrenderedBranch(f"states/f{n:02}.sls", n, n + (n % 2), "if") for n in range(1, 13)),
        unmapped=("states/odd.sls",),
    ),
)


def test_text_coverage_block_is_bounded() -> None:
    text = get_formatter("text").format(COVERED)
    block = text[text.index("coverage: "):text.index("saltpipe lint: ")]
    assert block.splitlines() == [
        "coverage: 14 SLS, rendered for 2 fixture minions",
        "  test/web-1        12 rendered, 2 not rendered (checked from text)",
        "  production/db-10  11 rendered, 2 not rendered (checked from text), 1 stopped by a render limit",
        "  never rendered by any fixture minion: 2 files",
        "    states/b.sls",
        "    states/z.sls",
        "  Jinja branches no fixture minion rendered (checked from their text): 12",
        *[f"    states/f{n:02}.sls:{n}{'-' + str(n + 1) if n % 2 else ''} (if)" for n in range(1, 11)],
        "    … and 2 more (--format json lists them all)",
        "  branches not mapped (whole text checked): states/odd.sls",
        "",
    ]
    assert "coverage" not in get_formatter("text").format(REPORT)


def test_json_coverage_is_complete() -> None:
    data = json.loads(get_formatter("json").format(COVERED))["coverage"]
    assert data["sls"] == 14 and data["never_rendered"] == ["states/b.sls", "states/z.sls"] and data["unmapped"] == ["states/odd.sls"]
    assert data["minions"][1] == {"minion": "production/db-10", "rendered": 11, "text": 2, "limited": 1}
    assert [b["path"] for b in data["unrendered_branches"]] == [f"states/f{n:02}.sls" for n in range(1, 13)]
    assert data["unrendered_branches"][0] == {"path": "states/f01.sls", "line": 1, "end_line": 2, "kind": "if"}
    assert "coverage" not in json.loads(get_formatter("json").format(REPORT))


def test_junit_coverage_is_suite_properties_and_output_not_a_failure() -> None:
    suite = ET.fromstring(get_formatter("junit").format(COVERED)).find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("tests") == "1"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props == {
        "coverage.sls": "14", "coverage.test/web-1.rendered": "12", "coverage.test/web-1.text": "2",
        "coverage.production/db-10.rendered": "11", "coverage.production/db-10.text": "2",
        "coverage.never_rendered": "2", "coverage.unrendered_branches": "12",
    }
    # The schema's order: properties, test cases, then the suite's system-out.
    assert [child.tag for child in suite] == ["properties", "testcase", "system-out"]
    assert (suite.findtext("system-out") or "").startswith("coverage: 14 SLS, rendered for 2 fixture minions\n")


def test_codequality_has_no_coverage_entries() -> None:
    """Code Quality is a list of issues; a coverage gap is not one (it is in the text, JSON and JUnit reports)."""
    assert json.loads(get_formatter("codequality").format(COVERED)) == []
