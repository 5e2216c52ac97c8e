"""False findings measured on real formulas (issue 11): each is valid Salt that lint must render and accept."""

from __future__ import annotations

from pathlib import Path

from lint_helpers import with_config, write_tree
from pipeline.config import load_config
from pipeline.findings import Report
from pipeline.lint.run import LintOptions, run_lint


def lint_states(tmp_path: Path, states: dict[str, str]) -> Report:
    files = {"states/top.sls": "base:\n  '*':\n" + "".join(f"    - {n}\n" for n in states)}
    files.update({f"states/{n}.sls": text for n, text in states.items()})
    root = write_tree(tmp_path, with_config(files))
    return run_lint(LintOptions(repo=root, config=load_config(root / "salt/pipeline.yaml"), pylint=False)).report


def errors(report: Report) -> list[tuple[str, str, int]]:
    return [(f.rule, f.path, f.line) for f in report.findings if f.severity.value == "error"]


def test_the_short_form_of_a_state_is_valid_salt(tmp_path: Path) -> None:
    report = lint_states(tmp_path, {"short": "# vim, the short way\nvim:\n  pkg.installed\n\ncurl: pkg.installed\n"})
    assert errors(report) == []


def test_a_short_form_with_an_unknown_function_is_reported_at_its_id(tmp_path: Path) -> None:
    report = lint_states(tmp_path, {"short": "# a typo\n\nvim:\n  pkg.instaled\n"})
    assert [(f.rule, f.line) for f in report.findings if f.severity.value == "error"] == [("unknown-state-function", 3)]


def test_postgres_database_template_is_not_a_renderer(tmp_path: Path) -> None:
    report = lint_states(tmp_path, {"pg": "appdb:\n  postgres_database.present:\n    - template: template0\n"})
    assert errors(report) == []


def test_a_stubbed_pkg_version_cmp_compares_like_a_number(tmp_path: Path) -> None:
    text = (
        "{% if salt['pkg.version_cmp'](salt['pkg.version']('nginx'), '1.18') >= 0 %}\n"
        "nginx-new:\n  test.nop\n{% endif %}\n"
        "{% if salt['pkg.version_cmp']('1', '2') < 0 and salt['pkg.version']('x') | int == 0 %}\n"
        "nginx-old:\n  test.nop\n{% endif %}\n"
    )
    report = lint_states(tmp_path, {"vcmp": text})
    assert errors(report) == []
    assert {f.rule for f in report.findings} == {"render-stubbed-call"}


def test_config_dir_is_a_minion_option_while_rendering(tmp_path: Path) -> None:
    text = (
        "{% set d = opts['config_dir'] %}{% set e = salt['config.get']('config_dir') %}\n"
        "minion-extra:\n  file.managed:\n    - name: {{ d }}/minion.d/extra.conf\n    - contents: {{ e }}\n"
    )
    report = lint_states(tmp_path, {"confdir": text})
    assert errors(report) == []
