"""The render coverage of a lint run (issue 11, issue 12): per fixture minion what rendered and what did not,
the SLS no fixture minion rendered, the Jinja branches no render reached - exact figures, and in the outputs."""

from __future__ import annotations

import json
from pathlib import Path

from lint_helpers import with_config, write_tree
from pipeline.config import load_config
from pipeline.findings import Coverage, MinionCoverage, UnrenderedBranch
from pipeline.formatters import get_formatter
from pipeline.lint.bounds import RenderLimits
from pipeline.lint.run import LintOptions, run_lint

FILES = {
    "states/top.sls": "base:\n  '*':\n    - web\n    - broken\n    - branches\n",
    # Renders for web-1 only: app-1's render raises.
    "states/web.sls": "{% if 'web' not in grains['roles'] %}{{ raise('web minions only') }}{% endif %}\nweb:\n  pkg.installed: []\n",
    # Renders for no minion: its text is all lint reads.
    "states/broken.sls": "{{ raise('never') }}\nx:\n  pkg.installed: []\n",
    # Renders for both; the RedHat branch and the body of the empty loop are never reached.
    "states/branches.sls": (
        "{% if grains['os_family'] == 'RedHat' %}\nyum:\n  pkg.installed: []\n{% else %}\napt:\n  pkg.installed: []\n{% endif %}\n"
        "{% for user in pillar.get('users', []) %}\n{{ user }}:\n  user.present: []\n{% endfor %}\n"
    ),
    "states/plain.sls": "plain:\n  pkg.installed: []\n",
}


def lint(tmp_path: Path, files: dict[str, str] = FILES, **options):  # type: ignore[no-untyped-def]
    root = write_tree(tmp_path, with_config(files))
    return run_lint(LintOptions(repo=root, config=load_config(root / "salt/pipeline.yaml"), pylint=False, **options)).report


def test_coverage_figures_are_exact(tmp_path: Path) -> None:
    assert lint(tmp_path).coverage == Coverage(
        sls=4,
        minions=(MinionCoverage("test/web-1", rendered=3, text=1), MinionCoverage("test/app-1", rendered=2, text=2)),
        never_rendered=("states/broken.sls",),
        # web.sls's branch ran only in app-1's failed render: only a successful render counts as reached.
        unrendered_branches=(
            UnrenderedBranch("states/branches.sls", 1, 4, "if"), UnrenderedBranch("states/branches.sls", 8, 11, "for"),
            UnrenderedBranch("states/web.sls", 1, 1, "if"),
        ),
    )


def test_a_render_limit_is_counted_apart_from_text(tmp_path: Path) -> None:
    files = {**FILES, "states/big.sls": "big:\n  pkg.installed:\n    - name: " + "x" * 4000 + "\n"}
    coverage = lint(tmp_path, files, limits=RenderLimits(max_bytes=1000)).coverage
    assert coverage is not None and coverage.sls == 5
    assert [(m.rendered, m.text, m.limited) for m in coverage.minions] == [(3, 1, 1), (2, 2, 1)]
    assert "states/big.sls" not in coverage.never_rendered  # a render-limit error, not read from its text


def test_outputs_carry_the_coverage(tmp_path: Path) -> None:
    report = lint(tmp_path)
    data = json.loads(get_formatter("json").format(report))
    assert data["coverage"] == {
        "sls": 4,
        "minions": [
            {"minion": "test/web-1", "rendered": 3, "text": 1, "limited": 0},
            {"minion": "test/app-1", "rendered": 2, "text": 2, "limited": 0},
        ],
        "never_rendered": ["states/broken.sls"],
        "unrendered_branches": [
            {"path": "states/branches.sls", "line": 1, "end_line": 4, "kind": "if"},
            {"path": "states/branches.sls", "line": 8, "end_line": 11, "kind": "for"},
            {"path": "states/web.sls", "line": 1, "end_line": 1, "kind": "if"},
        ],
        "unmapped": [],
    }
    text = get_formatter("text").format(report)
    assert "  test/app-1  2 rendered, 2 not rendered (checked from text)\n" in text
    assert "  never rendered by any fixture minion: 1 file\n    states/broken.sls\n" in text
    assert "    states/branches.sls:1-4 (if)\n    states/branches.sls:8-11 (for)\n    states/web.sls:1 (if)\n" in text


def test_nothing_rendered_means_no_coverage(tmp_path: Path) -> None:
    assert lint(tmp_path, {"states/top.sls": "base: {}\n"}).coverage is None
