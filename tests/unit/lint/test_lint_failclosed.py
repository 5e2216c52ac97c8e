"""Fail closed: what lint cannot check is a finding (or exit 2), never a silent pass."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import load_config
from pipeline.findings import Report
from pipeline.lint import LintOptions, run_lint
from lint_helpers import with_config, write_tree


def lint(root: Path, **kwargs) -> Report:  # type: ignore[no-untyped-def]
    cfg = load_config(root / "salt/pipeline.yaml")
    return run_lint(LintOptions(repo=root, config=cfg, pylint=False, **kwargs)).report


def where(report: Report) -> set[tuple[str, str, int]]:
    return {(f.rule, f.path, f.line) for f in report.findings}


def test_symlink_outside_the_repo_is_a_finding_and_the_rest_is_linted(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    (outside / "formula").mkdir(parents=True)
    (outside / "secret.sls").write_text("x:\n  test.nop: []\n")
    (outside / "formula" / "init.sls").write_text("y:\n  test.nop: []\n")
    root = write_tree(
        tmp_path / "repo",
        with_config({"states/top.sls": "base:\n  '*':\n    - app\n", "states/app.sls": "go:\n  cmd.run:\n    - name: id\n"}),
    )
    (root / "states/ext.sls").symlink_to(outside / "secret.sls")
    (root / "states/formula").symlink_to(outside / "formula")
    (root / "states/inside.sls").symlink_to(root / "states/app.sls")  # inside the repo: fine
    report = lint(root)
    found = where(report)
    assert ("symlink-outside-repo", "states/ext.sls", 1) in found
    assert ("symlink-outside-repo", "states/formula", 1) in found
    assert not any(f.path.startswith(("states/inside", "/")) and f.rule == "symlink-outside-repo" for f in report.findings)
    assert ("no-cmd-module", "states/app.sls", 1) in found  # the rest was linted
    assert all(not f.path.startswith(str(tmp_path)) for f in report.findings)  # the outside files were not read


def test_unknown_top_match_type_is_a_finding_with_its_line(tmp_path: Path) -> None:
    top = "base:\n  '*':\n    - common\n  'web*':\n    - match: globb\n    - web\n"
    root = write_tree(tmp_path, with_config({"states/top.sls": top, "states/common.sls": "a:\n  test.nop: []\n", "states/web.sls": "b:\n  test.nop: []\n"}))
    report = lint(root)
    errors = [f for f in report.findings if f.rule == "top-match-error"]
    assert [(f.path, f.line) for f in errors] == [("states/top.sls", 5)]
    assert "unknown match type 'globb'" in errors[0].message and "glob" in errors[0].message
    assert report.exit_code == 1
