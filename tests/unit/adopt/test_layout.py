"""``layout:`` in the pipeline config: lint, policy check and release build find files by it (issue 12)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import git
import pytest

from pipeline.config import Layout, PipelineConfig
from pipeline.layout import RepoLayout
from pipeline.lint.sources import SourceTree
from pipeline.release import ReleaseContentError
from pipeline.release.build import collect_files


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def commit(root: Path) -> git.Commit:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "c"], check=True)
    return git.Repo(root).head.commit


TREE = {
    "salt/top.sls": "base: {}\n",
    "salt/web/init.sls": "a:\n  test.nop\n",
    "salt/pipeline.yaml": "version: 1\n",
    "salt/fixtures/lint/grains.yaml": "{}\n",
    "vendor/ntp/init.sls": "b:\n  test.nop\n",
    "ext/_modules/ops.py": "def f():\n    return 1\n",
    "salt/docs/notes.md": "x\n",
    "_states/top_level_is_not_listed.py": "",
}
LAYOUT = RepoLayout.of(Layout(states_root="salt", roots=("vendor",), extensions=("ext/_modules",), exclude=("*.md",)))


def test_default_layout_is_the_saltpipe_repository_one() -> None:
    assert PipelineConfig().layout == Layout() and RepoLayout.of(None).roots == ("states",)


def test_lint_tree_follows_the_layout(tmp_path: Path) -> None:
    tree = SourceTree.scan(write(tmp_path, TREE), layout=LAYOUT)
    assert sorted(tree.sls) == ["ntp", "web"] and tree.top == tmp_path.resolve() / "salt/top.sls"
    assert [tree.rel(p) for p in tree.extension_python] == ["ext/_modules/ops.py"]
    assert tree.name_of(tmp_path.resolve() / "vendor/ntp/init.sls") == "ntp"


def test_release_merges_roots_and_places_listed_extensions(tmp_path: Path) -> None:
    files = {f.release_path: f.origin for f in collect_files(commit(write(tmp_path, TREE)), LAYOUT)}
    assert files == {
        "top.sls": "salt/top.sls",
        "web/init.sls": "salt/web/init.sls",
        "ntp/init.sls": "vendor/ntp/init.sls",
        "_modules/ops.py": "ext/_modules/ops.py",
    }


def test_release_refuses_a_path_two_roots_hold(tmp_path: Path) -> None:
    root = write(tmp_path, {**TREE, "vendor/web/init.sls": "c:\n  test.nop\n"})
    with pytest.raises(ReleaseContentError, match="lands on web/init.sls in the release tree"):
        collect_files(commit(root), LAYOUT)


def test_release_names_a_missing_listed_root(tmp_path: Path) -> None:
    root = write(tmp_path, {"salt/web/init.sls": "a:\n  test.nop\n"})
    with pytest.raises(ReleaseContentError, match="vendor/"):
        collect_files(commit(root), RepoLayout.of(Layout(states_root="salt", roots=("vendor",))))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"states_root": "/srv/salt"}, "must be a path inside the repository"),
        ({"states_root": "../x"}, "must be a path inside the repository"),
        ({"states_root": ".", "roots": ["formulas"]}, "is inside root"),
        ({"extensions": ["ext/modules"]}, "starts with '_'"),
        ({"extensions": ["a/_modules", "b/_modules"]}, "both land on _modules"),
    ],
)
def test_layout_validation(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Layout.model_validate(data)


@pytest.mark.parametrize(
    ("rel", "excluded"),
    [("docs/a.md", True), ("README.md", True), ("web/.hidden", True), ("web/init.sls", False), ("salt/pipeline.yaml", True),
     ("salt/fixtures/lint/g.yaml", True), ("test/x.rb", True), ("tests_helper.sls", False)],
)
def test_excludes(rel: str, excluded: bool) -> None:
    layout = RepoLayout.of(Layout(states_root=".", exclude=("docs/", "test/", "*.md", ".*")))
    assert layout.excludes(rel) is excluded


def test_policy_check_without_paths_checks_the_layout(tmp_path: Path) -> None:
    from pipeline.lint.policy_check import PolicyCheckOptions, check_paths

    root = write(tmp_path, {
        "salt/web/init.sls": "go:\n  cmd.run:\n    - name: id\n",
        "vendor/ntp/init.sls": "ntp:\n  cmd.run:\n    - name: date\n",
        "salt/docs/example.md": "x\n",
        "docs/old.sls": "old:\n  cmd.run:\n    - name: id\n",   # not a root: not Salt content
        "states/stale.sls": "s:\n  cmd.run:\n    - name: id\n",  # the default root, unused under this layout
        "salt/fixtures/lint/grains.yaml": "os_family: Debian\n",
        "salt/fixtures/lint/pillar.yaml": "{}\n",
    })
    cfg = PipelineConfig(layout=Layout(states_root="salt", roots=("vendor",)))
    report = check_paths(PolicyCheckOptions(paths=(), repo=root, config=cfg))
    assert sorted({f.path for f in report.findings if f.rule == "no-cmd-module"}) == ["salt/web/init.sls", "vendor/ntp/init.sls"]


def test_changed_since_maps_a_change_in_a_second_root(tmp_path: Path) -> None:
    from pipeline.lint.changes import ChangeSet, select

    root = write(tmp_path, {
        "salt/web/init.sls": "include:\n  - ntp\n",
        "vendor/ntp/init.sls": "ntp:\n  test.nop\n",
        "salt/db.sls": "db:\n  test.nop\n",
    })
    tree = SourceTree.scan(root, layout=RepoLayout.of(Layout(states_root="salt", roots=("vendor",))))
    selection = select(tree, ChangeSet(ref="main", base="0" * 40, changed=frozenset({"vendor/ntp/init.sls"})))
    assert not selection.full and selection.sls == frozenset({"ntp", "web"})


def test_lint_reports_a_path_two_roots_hold(tmp_path: Path) -> None:
    from pipeline.lint import LintOptions, run_lint

    root = write(tmp_path, {
        "salt/web/init.sls": "a:\n  test.nop\n",
        "vendor/web/init.sls": "b:\n  test.nop\n",
        "salt/fixtures/lint/grains.yaml": "os_family: Debian\n",
        "salt/fixtures/lint/pillar.yaml": "{}\n",
    })
    cfg = PipelineConfig(layout=Layout(states_root="salt", roots=("vendor",)))
    report = run_lint(LintOptions(repo=root, config=cfg, pylint=False)).report
    assert [(f.rule, f.path) for f in report.findings] == [("layout-root-clash", "vendor/web/init.sls")]
    assert "salt/web/init.sls" in report.findings[0].message and report.exit_code == 1
