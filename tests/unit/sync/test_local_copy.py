"""The local target's built-in copy (``_copy_new``: new inode, exact mode, never through a hard link) and its scan."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from salt.utils.files import set_umask

from pipeline.release.tree import scan_tree
from pipeline.sync import local as local_module
from pipeline.sync.local import LocalTarget, _copy_new


@pytest.mark.parametrize("mode", [0o644, 0o755])
def test_copy_has_the_content_and_mode_whatever_the_umask(tmp_path: Path, mode: int) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"x" * 300_000)
    src.chmod(mode)
    with set_umask(0o077):
        assert _copy_new(str(src), str(tmp_path / "dst")) == 300_000
    assert (tmp_path / "dst").read_bytes() == src.read_bytes()
    assert (tmp_path / "dst").stat().st_mode & 0o7777 == mode


def test_copy_replaces_a_hard_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    other_release = tmp_path / "served.sls"
    other_release.write_bytes(b"served content\n")
    staged = tmp_path / "staged.sls"
    os.link(other_release, staged)
    src = tmp_path / "new.sls"
    src.write_bytes(b"new content, longer than the old\n")
    assert _copy_new(str(src), str(staged)) == src.stat().st_size
    assert other_release.read_bytes() == b"served content\n"
    assert staged.read_bytes() == src.read_bytes() and not os.path.samefile(staged, other_release)


def test_copy_replaces_a_symlink_without_following_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep me\n")
    staged = tmp_path / "staged"
    staged.symlink_to(outside)
    src = tmp_path / "src"
    src.write_bytes(b"new\n")
    _copy_new(str(src), str(staged))
    assert outside.read_bytes() == b"keep me\n"
    assert not staged.is_symlink() and staged.read_bytes() == b"new\n"


def test_copy_files_counts_bytes_and_creates_directories(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "c.sls").write_bytes(b"c" * 10)
    (tree / "top.sls").write_bytes(b"t" * 5)
    root = tmp_path / "syndic"
    root.mkdir()
    target = LocalTarget("syndic-a", root)
    target.snapshot()
    target.prepare_staging("rel-000000000001", None, [], [])
    stats = target.copy_files("rel-000000000001", tree, ["a/b/c.sls", "top.sls"])
    assert (stats.files, stats.bytes) == (2, 15)
    staged = root / "releases" / ".staging-rel-000000000001"
    assert (staged / "a" / "b" / "c.sls").read_bytes() == b"c" * 10


def _odd_tree(root: Path) -> Path:
    rel = root / "releases" / "rel-000000000002"
    (rel / "web" / "files").mkdir(parents=True)
    (rel / "top.sls").write_bytes(b"base: {}\n")
    (rel / "web" / "sp ace*.sls").write_bytes(b"a\n" * 1000)
    (rel / "web" / "back\\slash.sls").write_bytes(b"b\n")
    (rel / "web" / "files" / "run.sh").write_bytes(b"#!/bin/sh\n")
    (rel / "web" / "files" / "run.sh").chmod(0o755)
    (rel / "web" / "link.sls").symlink_to("../top.sls")
    (rel / "dirlink").symlink_to("web")
    os.mkfifo(rel / "web" / "pipe")
    return rel


def test_local_scan_finds_what_scan_tree_finds(tmp_path: Path, monkeypatch) -> None:
    rel = _odd_tree(tmp_path)
    runs = []
    real_run = local_module.subprocess.run

    def spy(*args, **kwargs):
        kwargs.pop("check", None)
        runs.append(real_run(*args, check=False, **kwargs))
        return runs[-1]

    monkeypatch.setattr(local_module.subprocess, "run", spy)
    scan = LocalTarget("syndic-a", tmp_path).scan(rel.name)
    assert [(r.returncode, r.stderr) for r in runs] == [(0, b"")], "the script ran, not the fallback"
    assert scan == scan_tree(rel)
    assert scan.others == {"web/link.sls": "symlink", "dirlink": "symlink", "web/pipe": "fifo"}


def test_local_scan_falls_back_to_python_without_the_tools(tmp_path: Path, monkeypatch) -> None:
    rel = _odd_tree(tmp_path)

    def no_shell(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", "sh")

    monkeypatch.setattr(local_module.subprocess, "run", no_shell)
    assert LocalTarget("syndic-a", tmp_path).scan(rel.name) == scan_tree(rel)
