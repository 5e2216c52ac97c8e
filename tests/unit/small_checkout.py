"""Small saltpipe checkouts under Git for the CLI tests: a ``web`` state, a two-environment ``salt/pipeline.yaml``
whose syndics serve local directories, everything committed on ``main``. Imported by name (``from small_checkout
import ...``): tests/unit is on sys.path (see tests/unit/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import git

# Doubled braces: the text is a str.format template (state dir, syndic root, the optional release block, batches).
_LOCAL_SYNDICS_CONFIG = """\
version: 1
state_dir: {state}
{release}environments:
  test:
    syndics:
      - name: syndic-test
        file_roots: {{type: local, path: {root}/syndic-test}}
    target: "G@saltpipe_env:test"
    canary: [test-web-1]
    batches: ["100%"]
  production:
    syndics:
      - name: syndic-prod-a
        file_roots: {{type: local, path: {root}/syndic-prod-a}}
      - name: syndic-prod-b
        file_roots: {{type: local, path: {root}/syndic-prod-b}}
    target: "G@saltpipe_env:production"
    canary: 1
    batches: {production_batches}
    requires: [test]
"""

WEB_STATES: dict[str, str] = {
    "states/top.sls": "base:\n  '*':\n    - web\n",
    "states/web/init.sls": "nginx:\n  pkg.installed\n",
}


def local_syndics_config(state: Path, root: Path, *, release: str = "", production_batches: str = '["100%"]') -> str:
    """Returns the text of a pipeline.yaml with state_dir ``state``, environment ``test`` (syndic ``syndic-test``)
    and ``production`` (``syndic-prod-a``, ``syndic-prod-b``, after test), each syndic serving ``root/<name>``;
    ``release`` is a YAML block put before ``environments`` (e.g. ``"release:\\n  keep: 2\\n"``)."""
    return _LOCAL_SYNDICS_CONFIG.format(state=state, root=root, release=release,
                                        production_batches=production_batches)


def init_git(root: Path) -> git.Repo:
    """Returns a new repository at ``root`` (branch ``main``) with all of ``root`` committed as ``initial``."""
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Test")
        cw.set_value("user", "email", "test@example.net")
    repo.git.add(A=True)
    repo.index.commit("initial")
    return repo


def small_checkout(repo_dir: Path, config: str, files: dict[str, str] | None = None) -> git.Repo:
    """Writes :data:`WEB_STATES`, ``config`` as salt/pipeline.yaml and ``files`` (relative path -> text) under
    ``repo_dir`` and commits them (:func:`init_git`); returns the repository."""
    for rel, text in {**WEB_STATES, "salt/pipeline.yaml": config, **(files or {})}.items():
        path = repo_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return init_git(repo_dir)
