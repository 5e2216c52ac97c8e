"""``saltpipe lint`` and ``saltpipe policy check`` on the command line: formats, --output, exit codes 0/1/2."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pipeline.cli import main
from lint_helpers import REPO, with_config, write_tree


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    out, err = capsys.readouterr()
    return int(excinfo.value.code or 0), out, err


def test_lint_passes_on_the_bundled_content(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    output = tmp_path / "junit.xml"
    code, out, _ = run(["--repo", str(REPO), "lint", "--no-pylint", "--format", "junit", "--output", str(output)], capsys)
    assert code == 0, out
    assert "saltpipe lint: passed" in out and f"junit report written to {output}" in out
    suite = ET.parse(output).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and int(suite.get("tests") or 0) >= 8


def test_lint_exit_1_with_the_finding_in_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = write_tree(tmp_path, with_config({"states/top.sls": "base:\n  '*':\n    - app\n", "states/app.sls": "go:\n  cmd.run:\n    - name: id\n"}))
    code, out, _ = run(["--repo", str(root), "lint", "--no-pylint", "--format", "json"], capsys)
    assert code == 1
    findings = json.loads(out)["findings"]
    assert [(f["rule"], f["path"], f["line"], f["state_id"]) for f in findings] == [("no-cmd-module", "states/app.sls", 1, "go")]


def test_lint_usage_and_config_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(["--repo", str(REPO), "lint", "--no-pylint", "--env", "staging"], capsys)
    assert code == 2 and "unknown environment 'staging'" in err
    root = write_tree(tmp_path, with_config({"states/a.sls": "a:\n  test.nop: []\n", "salt/policy.yaml": "severities:\n  no-such-rule: info\n"}))
    code, _, err = run(["--repo", str(root), "lint", "--no-pylint"], capsys)
    assert code == 2 and "policy.yaml:2" in err and "unknown rule id 'no-such-rule'" in err


def test_policy_check_single_file_outside_a_repository(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    sls = tmp_path / "loose.sls"
    sls.write_text("ok:\n  pkg.installed: []\nbad:\n  file.managed:\n    - name: /etc/x\n    - check_cmd: /bin/true\n")
    code, out, _ = run(["--repo", str(tmp_path), "policy", "check", str(sls), "--format", "json"], capsys)
    assert code == 1
    assert [(f["rule"], f["line"]) for f in json.loads(out)["findings"]] == [("shell-requisite", 6)]
    sls.write_text("ok:\n  pkg.installed: []\n")
    code, out, _ = run(["--repo", str(tmp_path), "policy", "check", str(sls)], capsys)
    assert code == 0 and "passed" in out


def test_policy_check_refuses_unknown_file_kinds(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("cmd.run")
    code, _, err = run(["--repo", str(tmp_path), "policy", "check", str(other)], capsys)
    assert code == 2 and "notes.txt" in err and ".sls, .py" in err
    code, _, err = run(["--repo", str(tmp_path), "policy", "check", str(tmp_path / "missing.sls")], capsys)
    assert code == 2 and "no such file" in err


def test_policy_check_directory_classifies_by_extension(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write_tree(tmp_path / "tree", {"a.sls": "a:\n  test.nop: []\n", "m.py": "import subprocess\n", "t.j2": "{{ salt['cmd.run']('id') }}\n", "README": "cmd.run\n"})
    code, out, _ = run(["--repo", str(tmp_path), "policy", "check", str(tmp_path / "tree"), "--format", "json"], capsys)
    assert code == 1
    assert sorted((f["rule"], Path(f["path"]).name) for f in json.loads(out)["findings"]) == [
        ("jinja-forbidden-call", "t.j2"),
        ("py-shell-exec", "m.py"),
    ]
