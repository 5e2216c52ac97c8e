"""Scanning a release tree on disk and comparing it with what its manifest expects.

Used for the local release store and for a local syndic's staged tree; the SSH target builds the same
:class:`TreeScan` from ``find``/``sha256sum`` output on the remote host, so the comparison is one piece of code.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.release.manifest import ManifestEntry

_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileFact:
    """What was found on disk for one regular file."""

    size: int
    mode: int
    sha256: str


@dataclass(frozen=True)
class TreeScan:
    """A tree as found: regular files with their facts, and anything else (symlinks, devices, ...) by kind."""

    files: dict[str, FileFact] = field(default_factory=dict)
    others: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Mismatch:
    """One difference between a tree and its manifest. ``problem`` is one of the constants below."""

    path: str
    problem: str
    detail: str = ""

    MISSING = "missing"
    UNEXPECTED = "unexpected"
    CONTENT = "content differs"
    SIZE = "size differs"
    MODE = "mode differs"
    TYPE = "not a regular file"

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}" + (f" ({self.detail})" if self.detail else "")


def sha256_file(path: Path | str) -> str:
    """sha256 of a file's content, read in 1 MiB chunks (hashlib releases the GIL on big buffers)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def scan_tree(root: Path) -> TreeScan:
    """Every entry under ``root`` (not following symlinks). Directories are implied by their files."""
    files: dict[str, FileFact] = {}
    others: dict[str, str] = {}
    root_str = str(root)
    for dirpath, dirnames, filenames in os.walk(root_str):
        rel_dir = os.path.relpath(dirpath, root_str)
        for name in list(dirnames):
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                # os.walk lists a symlink to a directory among dirnames; it is not a directory of ours.
                others[_rel(rel_dir, name)] = "symlink"
                dirnames.remove(name)
        for name in filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            rel = _rel(rel_dir, name)
            if stat.S_ISREG(st.st_mode):
                files[rel] = FileFact(st.st_size, stat.S_IMODE(st.st_mode), sha256_file(full))
            else:
                others[rel] = _kind(st.st_mode)
    return TreeScan(files, others)


def _rel(rel_dir: str, name: str) -> str:
    return name if rel_dir == "." else f"{rel_dir}/{name}"


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def compare(expected: dict[str, ManifestEntry], scan: TreeScan) -> list[Mismatch]:
    """Differences between ``expected`` (path -> entry) and ``scan``, sorted by path; empty means identical."""
    problems: list[Mismatch] = []
    for path, kind in scan.others.items():
        problems.append(Mismatch(path, Mismatch.TYPE if path in expected else Mismatch.UNEXPECTED, kind))
    for path, entry in expected.items():
        if path in scan.others:
            continue
        fact = scan.files.get(path)
        if fact is None:
            problems.append(Mismatch(path, Mismatch.MISSING))
        elif fact.size != entry.size:
            problems.append(Mismatch(path, Mismatch.SIZE, f"{fact.size} bytes, manifest says {entry.size}"))
        elif fact.sha256 != entry.sha256:
            problems.append(Mismatch(path, Mismatch.CONTENT, f"sha256 {fact.sha256[:12]}, manifest {entry.sha256[:12]}"))
        elif fact.mode != entry.mode:
            problems.append(Mismatch(path, Mismatch.MODE, f"{fact.mode:04o}, manifest {entry.mode:04o}"))
    for path in scan.files:
        if path not in expected:
            problems.append(Mismatch(path, Mismatch.UNEXPECTED, "regular file"))
    return sorted(problems, key=lambda m: m.path)


def describe_mismatches(problems: list[Mismatch], limit: int = 5) -> str:
    """``a.sls: missing; b.sls: content differs (...)`` with at most ``limit`` items and a count of the rest."""
    shown = "; ".join(str(p) for p in problems[:limit])
    more = len(problems) - limit
    return shown + (f"; and {more} more" if more > 0 else "")
