"""``--changed-since``: what changed, plus every SLS that includes it or that it includes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import GitError
from pipeline.lint import LintOptions, run_lint
from pipeline.lint.changes import changes_since, select
from pipeline.lint.sources import SourceTree
from lint_helpers import with_config, write_tree
from small_checkout import init_git

FILES = {
    "states/top.sls": "base:\n  '*':\n    - role.web\n",
    "states/role/web.sls": "include:\n  - nginx\n  - base\n",
    "states/nginx/init.sls": "{%- from 'nginx/map.jinja' import nginx with context %}\ninclude:\n  - .conf\nnginx:\n  pkg.installed: []\n",
    "states/nginx/map.jinja": "{%- set nginx = {'port': 80} %}\n",
    "states/nginx/conf.sls": "nginx-conf:\n  file.managed:\n    - name: /etc/nginx/nginx.conf\n",
    "states/base/init.sls": "include:\n  - .motd\n",
    "states/base/motd.sls": "motd:\n  file.managed:\n    - name: /etc/motd\n",
    "states/unrelated.sls": "other:\n  test.nop: []\n",
    "salt/policy.yaml": "version: 1\n",
}


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = write_tree(tmp_path, with_config(FILES))
    git_repo = init_git(root)
    git_repo.git.checkout("-b", "feature")
    return root


def _selected(root: Path) -> set[str]:
    return set(select(SourceTree.scan(root), changes_since(root, "main")).sls)


def test_leaf_change_selects_its_includers_and_what_they_include(repo: Path) -> None:
    (repo / "states/nginx/conf.sls").write_text("nginx-conf:\n  file.managed:\n    - name: /etc/nginx/conf.d/x.conf\n")
    # role.web includes nginx includes nginx.conf; role.web also includes base (and base.motd).
    assert _selected(repo) == {"nginx.conf", "nginx", "role.web", "base", "base.motd"}


def test_jinja_import_counts_as_an_include(repo: Path) -> None:
    (repo / "states/nginx/map.jinja").write_text("{%- set nginx = {'port': 8080} %}\n")
    assert {"nginx", "role.web"} <= _selected(repo)
    assert "unrelated" not in _selected(repo)


def test_deleted_sls_rechecks_its_includers(repo: Path) -> None:
    (repo / "states/base/motd.sls").unlink()
    assert {"base", "role.web"} <= _selected(repo)


def test_committed_change_on_the_branch_is_seen(repo: Path) -> None:
    (repo / "states/unrelated.sls").write_text("other:\n  cmd.run:\n    - name: id\n")
    import git

    git.Repo(repo).git.commit("-am", "bad change")
    report = run_lint(LintOptions(repo=repo, config=load_config(repo / "salt/pipeline.yaml"), changed_since="main", pylint=False)).report
    assert [(f.rule, f.path, f.line) for f in report.findings] == [("no-cmd-module", "states/unrelated.sls", 1)]
    assert report.stats["sls"] == 1
    assert not report.security_review_required


def test_findings_outside_the_selection_are_not_reported(repo: Path) -> None:
    (repo / "states/unrelated.sls").write_text("other:\n  cmd.run:\n    - name: id\n")
    import git

    git.Repo(repo).git.commit("-am", "bad change on main")
    git.Repo(repo).git.branch("-f", "main", "HEAD")
    (repo / "states/base/motd.sls").write_text("motd:\n  file.managed:\n    - name: /etc/issue\n")
    result = run_lint(LintOptions(repo=repo, config=load_config(repo / "salt/pipeline.yaml"), changed_since="main", pylint=False))
    assert result.report.findings == ()
    assert not result.selection.full and "unrelated" not in result.selection.sls


def test_policy_change_runs_everything_and_needs_security_review(repo: Path) -> None:
    (repo / "salt/policy.yaml").write_text("version: 1\nseverities:\n  include-cycle: warning\n")
    result = run_lint(LintOptions(repo=repo, config=load_config(repo / "salt/pipeline.yaml"), changed_since="main", pylint=False))
    assert result.selection.full and result.report.security_review_required
    assert [(f.rule, f.path, f.severity.value) for f in result.report.findings] == [("security-review-required", "salt/policy.yaml", "info")]
    assert result.report.stats["sls"] == 6


def test_unknown_revision_is_a_git_error(repo: Path) -> None:
    with pytest.raises(GitError, match="unknown revision 'no-such-branch'"):
        changes_since(repo, "no-such-branch")


def test_top_file_change_alone_is_checked(repo: Path) -> None:
    (repo / "states/top.sls").write_text("base:\n  '*':\n    - role.web\n    - role.gone\n")
    report = run_lint(LintOptions(repo=repo, config=load_config(repo / "salt/pipeline.yaml"), changed_since="main", pylint=False)).report
    assert [(f.rule, f.path, f.line) for f in report.findings] == [("top-missing-sls", "states/top.sls", 4)]
