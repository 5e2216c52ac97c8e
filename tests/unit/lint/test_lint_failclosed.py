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


_LAUGHS = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip([None, *"abcdefgh"], "abcdefghi")
)


def test_billion_laughs_is_a_render_limit_finding_in_seconds_and_the_rest_is_linted(tmp_path: Path) -> None:
    import time

    files = {
        "states/top.sls": "base:\n  '*':\n    - lol\n    - app\n",
        "states/lol.sls": _LAUGHS,
        "states/app.sls": "go:\n  cmd.run:\n    - name: id\n",
    }
    root = write_tree(tmp_path, with_config(files))
    started = time.monotonic()
    report = lint(root)
    assert time.monotonic() - started < 30  # was minutes: Salt's yaml renderer walked 490 million nodes
    limits = [f for f in report.findings if f.rule == "render-limit"]
    assert [(f.path, f.severity.value) for f in limits] == [("states/lol.sls", "error")]
    assert "YAML aliases expand to 490,329,064 nodes" in limits[0].message and limits[0].line > 1
    assert ("no-cmd-module", "states/app.sls", 1) in where(report)
    assert report.exit_code == 1


def test_a_render_that_does_not_end_times_out_with_its_line(tmp_path: Path) -> None:
    from pipeline.lint.bounds import RenderLimits

    endless = "{% for i in range(100000) %}\n{% for j in range(100000) %}\n{% set x = i * j %}\n{% endfor %}\n{% endfor %}\na:\n  test.nop: []\n"
    files = {"states/top.sls": "base:\n  '*':\n    - loop\n    - app\n", "states/loop.sls": endless, "states/app.sls": "go:\n  cmd.run:\n    - name: id\n"}
    root = write_tree(tmp_path, with_config(files))
    report = lint(root, limits=RenderLimits(timeout=0.5))
    limits = [f for f in report.findings if f.rule == "render-limit"]
    assert [f.path for f in limits] == ["states/loop.sls"]
    assert "did not finish in 0.5s" in limits[0].message and limits[0].line in (1, 2, 3)
    assert ("no-cmd-module", "states/app.sls", 1) in where(report)
    # Rendered for the first minion only: a file that timed out is not rendered again for the next one.
    assert "test/web-1" in limits[0].message and "app-1" not in limits[0].message


def test_a_file_over_the_size_bound_is_not_rendered(tmp_path: Path) -> None:
    from pipeline.lint.bounds import RenderLimits

    big = "a:\n  test.nop: []\n" + "# padding\n" * 200
    root = write_tree(tmp_path, with_config({"states/top.sls": "base:\n  '*':\n    - big\n", "states/big.sls": big}))
    report = lint(root, limits=RenderLimits(max_bytes=1000))
    assert [(f.rule, f.path, f.line) for f in report.findings] == [("render-limit", "states/big.sls", 1)]
    assert "more than the 1,000 lint renders" in report.findings[0].message
