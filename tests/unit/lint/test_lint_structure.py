"""Structure checks through the whole lint stage: top.sls, includes, cycles, duplicate IDs, state functions,
requisites, render errors - each with its file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

from pipeline.config import load_config
from pipeline.findings import Report
from pipeline.lint import LintOptions, run_lint
from lint_helpers import with_config, write_tree

_GOOD = {
    "states/top.sls": """
        base:
          'G@saltpipe_env:test':
            - match: compound
            - common
          'G@roles:web':
            - match: compound
            - web
    """,
    "states/common/init.sls": """
        include:
          - .users
        common-packages:
          pkg.installed:
            - pkgs: [curl]
    """,
    "states/common/users.sls": """
        deploy:
          user.present:
            - require:
              - pkg: common-packages
    """,
    "states/web/init.sls": """
        include:
          - common
        nginx:
          pkg.installed: []
          service.running:
            - watch:
              - pkg: nginx
              - sls: common
    """,
}
GOOD = {k: textwrap.dedent(v).lstrip() for k, v in _GOOD.items()}


def lint(root: Path) -> Report:
    cfg = load_config(root / "salt/pipeline.yaml")
    return run_lint(LintOptions(repo=root, config=cfg, pylint=False)).report


def where(report: Report) -> set[tuple[str, str, int]]:
    return {(f.rule, f.path, f.line) for f in report.findings}


def test_clean_tree_passes(tmp_path: Path) -> None:
    report = lint(write_tree(tmp_path, with_config(GOOD)))
    assert report.findings == () and report.ok
    assert report.stats["minions"] == 2 and report.stats["sls"] == 3


def test_each_structure_problem_is_found_with_its_line(tmp_path: Path) -> None:
    files = dict(GOOD)
    files["states/top.sls"] += "  'G@roles:app':\n    - match: compound\n    - app.missing\n"
    files["states/web/init.sls"] = textwrap.dedent("""
        include:
          - common
          - .cycle
          - nope.nothing
        nginx:
          pkg.instaled: []
          service.running:
            - require:
              - file: does-not-exist
        deploy:
          test.nop: []
    """).lstrip()
    files["states/web/cycle.sls"] = "include:\n  - web\ncycle-state:\n  test.nop: []\n"
    files["states/broken.sls"] = "x:\n  test.nop:\n    - name: {{ pillar['nope']['x'] }}\n"
    files["states/shape.sls"] = "just-a-string: hello\ntwo-pkgs:\n  pkg.installed: []\n  pkg.removed: []\n"
    report = lint(write_tree(tmp_path, with_config(files)))
    assert where(report) == {
        ("top-missing-sls", "states/top.sls", 10),
        ("include-missing", "states/web/init.sls", 4),
        ("include-cycle", "states/web/init.sls", 3),
        ("unknown-state-function", "states/web/init.sls", 5),
        ("dangling-requisite", "states/web/init.sls", 8),
        ("duplicate-state-id", "states/web/init.sls", 10),
        ("sls-render-error", "states/broken.sls", 3),
        ("sls-structure", "states/shape.sls", 1),
        ("sls-structure", "states/shape.sls", 2),
    }
    by_rule = {f.rule: f for f in report.findings}
    assert "pkg.installed" in by_rule["unknown-state-function"].message  # the suggestion
    assert "states/common/users.sls" in by_rule["duplicate-state-id"].message
    assert "web -> web.cycle -> web" in by_rule["include-cycle"].message
    assert "test/web-1" in by_rule["sls-render-error"].message and "test/app-1" in by_rule["sls-render-error"].message
    assert not report.ok


def test_custom_state_modules_count_as_state_functions(tmp_path: Path) -> None:
    files = dict(GOOD)
    files["_states/ops_demo.py"] = '__virtualname__ = "ops_demo"\n\n\ndef __virtual__():\n    return __virtualname__\n\n\ndef drained(name):\n    return {}\n'
    files["states/common/init.sls"] += "drain:\n  ops_demo.drained: []\nundrain:\n  ops_demo.undrained: []\n"
    report = lint(write_tree(tmp_path, with_config(files)))
    assert where(report) == {("unknown-state-function", "states/common/init.sls", 8)}


def test_bundled_content_passes() -> None:
    from lint_helpers import REPO

    report = lint(REPO)
    assert [f for f in report.findings if f.severity.value == "error"] == []
    assert report.stats["sls"] >= 8 and report.stats["minions"] >= 2


def test_a_crashing_rule_is_an_internal_error_and_the_run_goes_on(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from pipeline.policy import rules
    from pipeline.policy.rule import Rule

    class Crashing(Rule):
        """Crashes on every SLS."""

        id = "crashing-rule"

        def match_sls(self, doc, ctx):  # type: ignore[no-untyped-def]
            raise KeyError("boom")

    real = rules.all_rules()
    # The engine is given its rules (pipeline.policy.rule holds Rule; no cycle back to the rules package).
    monkeypatch.setattr("pipeline.lint.run.all_rules", lambda: (Crashing, *real))
    files = dict(GOOD)
    files["states/web/init.sls"] += "restart:\n  cmd.run:\n    - name: id\n"
    report = lint(write_tree(tmp_path, with_config(files)))
    crashes = report.by_rule("internal-error")
    assert {f.path for f in crashes} == {"states/common/init.sls", "states/common/users.sls", "states/web/init.sls"}
    assert all("crashing-rule" in f.message and "KeyError" in f.message for f in crashes)
    assert [(f.path, f.line) for f in report.by_rule("no-cmd-module")] == [("states/web/init.sls", 9)]
