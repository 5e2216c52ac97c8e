"""The local target's built-in copy (``_copy_new``): new inode, exact mode, never through a hard link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from salt.utils.files import set_umask

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
