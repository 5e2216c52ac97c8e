"""Helpers for release tests: throwaway Git repositories with regular files, symlinks and crafted trees."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import git
import pytest


class Link(str):
    """A symlink to create in the working tree (the value is the link target)."""


def write_files(root: Path, files: dict[str, str | bytes | Link]) -> None:
    """Create ``files`` under ``root``; a :class:`Link` becomes a symlink, ``*.sh`` files are executable."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            os.symlink(str(content), path)
            continue
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
        os.chmod(path, 0o755 if rel.endswith(".sh") else 0o644)


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., git.Repo]:
    """``make_repo(files)``: a fresh repository with one commit of ``files``; call ``commit(repo, files)`` again."""
    counter = {"n": 0}

    def make(files: dict[str, str | bytes | Link]) -> git.Repo:
        counter["n"] += 1
        root = tmp_path / f"repo{counter['n']}"
        root.mkdir()
        repo = git.Repo.init(root, initial_branch="main")
        with repo.config_writer() as cw:
            cw.set_value("user", "name", "Test")
            cw.set_value("user", "email", "test@example.net")
        commit(repo, files)
        return repo

    return make


def commit(repo: git.Repo, files: dict[str, str | bytes | Link], message: str = "change") -> str:
    """Write ``files`` into the working tree, commit everything, return the new commit's SHA."""
    root = Path(repo.working_tree_dir)
    write_files(root, files)
    repo.git.add(A=True)
    repo.git.commit("-q", "-m", message, "--allow-empty")
    return repo.head.commit.hexsha


def commit_raw_tree(repo: git.Repo, top_entries: list[str]) -> str:
    """Commit a tree assembled with ``git mktree`` from ``"<mode> <type> <sha>\\t<name>"`` lines.

    Lets tests craft what a normal working tree cannot hold (names like ``..``, gitlinks), as a hostile
    push could.
    """
    root = Path(repo.working_tree_dir)
    tree = subprocess.run(
        ["git", "mktree", "--missing"], input="\n".join(top_entries) + "\n", cwd=root, check=True,
        capture_output=True, text=True,
    ).stdout.strip()
    sha = subprocess.run(
        ["git", "commit-tree", tree, "-m", "crafted"], cwd=root, check=True, capture_output=True, text=True,
        env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
             "GIT_COMMITTER_EMAIL": "t@e"},
    ).stdout.strip()
    return sha


def mktree(repo: git.Repo, lines: list[str]) -> str:
    """``git mktree`` of ``lines``; returns the tree SHA (for nesting into :func:`commit_raw_tree`)."""
    return subprocess.run(
        ["git", "mktree", "--missing"], input="\n".join(lines) + "\n", cwd=repo.working_tree_dir, check=True,
        capture_output=True, text=True,
    ).stdout.strip()


def hash_blob(repo: git.Repo, data: str) -> str:
    return subprocess.run(
        ["git", "hash-object", "-w", "--stdin"], input=data, cwd=repo.working_tree_dir, check=True,
        capture_output=True, text=True,
    ).stdout.strip()
