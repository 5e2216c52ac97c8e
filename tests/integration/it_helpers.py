"""Helpers of the integration tests (imported by conftest.py and the test modules; fixtures live in conftest)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.topology import Topology

REPO = Path(__file__).resolve().parents[2]

#: SLS files the tests serve next to the bundled content (``saltpipe_probe``, ``saltpipe_it.*``).
TEST_SLS = Path(__file__).resolve().parent / "sls"


def saltpipe(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the saltpipe CLI of this checkout in a subprocess (as a user would)."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--repo", str(REPO), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def short_tmpdir() -> Path:
    # Salt's unix sockets live below the work directory and their paths stop at 107 bytes; pytest's
    # tmp_path_factory directories can be too long, so take a short directory of our own.
    base = os.environ.get("TMPDIR", "/tmp")
    if len(base) > 20:
        base = "/tmp"
    return Path(tempfile.mkdtemp(prefix="sp-it-", dir=base))


def serve_tree(topology: Topology, source: Path, name: str) -> None:
    """Make every syndic master serve ``source`` as saltenv ``base``: copy it beside ``current``, switch the
    ``current`` link atomically, and refresh each master's file list (new files are not served before that).

    A test helper standing in for ``saltpipe sync`` (pipeline/sync), so these tests do not depend on that stage.
    """
    for syndic in topology.syndics:
        target = syndic.file_roots / "seeds" / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target, symlinks=True)
        link = syndic.file_roots / f".current-{name}.tmp"
        link.unlink(missing_ok=True)
        link.symlink_to(target.relative_to(syndic.file_roots))
        link.replace(syndic.served_base)
    for syndic in topology.syndics:
        result = syndic.master.salt_run("fileserver.update")
        assert result.data is True, f"fileserver.update on {syndic.id}: {result}"


def build_content_tree(dest: Path) -> Path:
    """The file_roots tree of this checkout as a release has it: ``states/`` at the root, ``_modules/``,
    ``_states/`` (any ``_*/``) under their names; plus the tests' own SLS (:data:`TEST_SLS`)."""
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    states = REPO / "states"
    if states.is_dir():
        shutil.copytree(states, dest, dirs_exist_ok=True, ignore=ignore)
    for extra in sorted(REPO.glob("_*")):
        if extra.is_dir():
            shutil.copytree(extra, dest / extra.name, ignore=ignore)
    shutil.copytree(TEST_SLS, dest, dirs_exist_ok=True)
    return dest


@contextmanager
def served_tree_restored(topology: Topology, syndics: Iterable[str]) -> Iterator[None]:
    """On leaving, put each of ``syndics``' ``current`` link back as it was on entering (or remove it if there
    was none), drop any canary saltenv link made meanwhile under ``envs/`` (whatever left it: a ``sync --canary``,
    an interrupted rollout), and refresh the master's fileserver - so the other modules keep serving what the
    session fixture served."""
    names = tuple(syndics)
    before: dict[str, str | None] = {}
    envs_before: dict[str, set[str]] = {}
    for name in names:
        syndic = topology.syndic(name)
        link = syndic.served_base
        before[name] = os.readlink(link) if link.is_symlink() else None
        envs = syndic.file_roots / "envs"
        envs_before[name] = set(os.listdir(envs)) if envs.is_dir() else set()
    try:
        yield
    finally:
        for name in names:
            syndic = topology.syndic(name)
            link = syndic.served_base
            if before[name] is None:
                if link.is_symlink():
                    link.unlink()
            else:
                tmp = syndic.file_roots / ".it-restore.tmp"
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(before[name])
                tmp.replace(link)
            envs = syndic.file_roots / "envs"
            for entry in (set(os.listdir(envs)) - envs_before[name]) if envs.is_dir() else ():
                if (envs / entry).is_symlink():
                    (envs / entry).unlink()
            syndic.master.salt_run("fileserver.update")
