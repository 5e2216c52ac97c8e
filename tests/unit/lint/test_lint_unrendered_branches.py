"""Jinja branches no fixture minion renders are checked from their text (issue 11); reached ones are not re-read."""

from __future__ import annotations

from pathlib import Path

import pytest

from lint_helpers import with_config, write_tree
from pipeline.config import load_config
from pipeline.lint.run import LintOptions, run_lint

SVC = "app:\n  service.running:\n    - name: app\n"
CASES = [
    ("{% if grains['os_family'] == 'RedHat' %}\nsetup:\n  cmd.run:\n    - name: yum makecache\n{% else %}\nsetup:\n  pkg.installed:\n"
     "    - name: curl\n{% endif %}\n", ("no-cmd-module", 2)),
    (SVC + "{% if grains['os_family'] == 'RedHat' %}\n    - onlyif: test -f {{ pillar.get('flag', '/x') }}\n{% endif %}\n", ("shell-requisite", 5)),
    (SVC + "{% if grains['os_family'] == 'Debian' %}\n    - onlyif:\n      - fun: file.file_exists\n        path: /x\n{% else %}\n"
     "    - onlyif: test -x /usr/bin/app\n{% endif %}\n", ("shell-requisite", 9)),
    ("{% if grains['os_family'] == 'RedHat' %}\n" + SVC + "    - unless: pgrep {{ pillar.get('check') }}\n{% endif %}\n", ("shell-requisite", 5)),
]


def lint(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    root = write_tree(tmp_path, with_config({"states/top.sls": "base:\n  '*':\n    - c\n", "states/c.sls": text}))
    return run_lint(LintOptions(repo=root, config=load_config(root / "salt/pipeline.yaml"), pylint=False)).report


@pytest.mark.parametrize("text,expected", CASES)
def test_a_branch_no_fixture_renders_is_checked_at_its_line(tmp_path: Path, text: str, expected: tuple[str, int]) -> None:
    report = lint(tmp_path, text)
    found = [(f.rule, f.line) for f in report.findings if f.severity.value == "error"]
    assert found == [expected]
    assert "no fixture minion renders" in report.findings[0].message


def test_a_reached_branch_is_judged_by_its_rendered_value(tmp_path: Path) -> None:
    text = SVC + "{% if grains['os_family'] == 'Debian' %}\n    - onlyif: {{ [{'fun': 'file.file_exists', 'path': '/x'}] | json }}\n{% endif %}\n"
    assert lint(tmp_path, text).findings == ()
