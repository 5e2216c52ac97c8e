"""Helpers for sync tests: releases made straight into a store (no Git needed), syndic directories."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.release import MARKER_NAME, Manifest, ManifestEntry, Release, ReleaseStore
from pipeline.release.store import TREE_DIR


def make_release(store: ReleaseStore, files: dict[str, str | bytes]) -> Release:
    """Put a release with ``files`` (path -> content; ``*.sh`` executable) into ``store``, as a build would."""
    build = store.new_build_dir()
    entries = []
    for rel, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        mode = 0o755 if rel.endswith(".sh") else 0o644
        path = build / TREE_DIR / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode)
        entries.append(ManifestEntry(rel, len(data), mode, hashlib.sha256(data).hexdigest()))
    manifest = Manifest.of(entries)
    (build / TREE_DIR / MARKER_NAME).write_bytes(manifest.marker_bytes())
    release, _ = store.add(build, manifest, {"commit": None, "built_at": None})
    return release


@contextmanager
def killed_at_the_end(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """Start ``argv``; the ``with`` block waits for the moment to kill it. When the block ends the process is
    killed -9 and reaped, and must have died of that SIGKILL (not exited before); when the block fails, the
    process is killed and reaped all the same."""
    proc = subprocess.Popen(list(argv), env=None if env is None else dict(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        yield proc
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"exited before it was killed: {proc.returncode}"


# A child process, so that the kill -9 ends a whole sync (as the OOM killer would) and not the test.
# argv: store root, environment, release id, then syndic name and directory pairs.
_SYNC_KILLED_MID_COPY = textwrap.dedent(
    """
    import os, shutil, signal, sys
    from pathlib import Path
    from pipeline.release import ReleaseStore
    from pipeline.sync import LocalTarget, SyncContext, sync_release

    store = ReleaseStore(Path(sys.argv[1]))
    release = store.get(sys.argv[3])
    calls = {"n": 0}

    def copy_then_die(src, dst):
        calls["n"] += 1
        if calls["n"] == 6:
            os.kill(os.getpid(), signal.SIGKILL)  # the copy is killed mid-way, as by the OOM killer or kill -9
        shutil.copyfile(src, dst)

    pairs = zip(sys.argv[4::2], sys.argv[5::2])
    targets = [LocalTarget(name, Path(root), copy_file=copy_then_die) for name, root in pairs]
    sync_release(SyncContext(sys.argv[2], release, tuple(targets), store))
    print("not killed")
    """
)


def sync_killed_mid_copy(store: ReleaseStore, environment: str, release: Release, roots: Mapping[str, Path],
                         timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Sync ``release`` from ``store`` to ``environment``'s local syndic directories ``roots`` (name -> directory)
    in a child Python that kills itself -9 at its sixth file copy; returns the finished child (output captured),
    after ``timeout`` seconds at the most."""
    pairs = [x for name, root in roots.items() for x in (name, str(root))]
    argv = [sys.executable, "-c", _SYNC_KILLED_MID_COPY, str(store.root), environment, release.id, *pairs]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def sync_killed_at_switch(argv: Sequence[str], marker: Path, timeout: float) -> None:
    """Run ``argv`` (a sync) with the switch journal's test hook (:data:`~pipeline.sync.switchlog.PAUSE_ENV`)
    set to ``marker`` and SIGKILL it once the hook has created ``marker`` (the first syndic has switched, the
    others wait): a sync killed at the switch. Polls for the marker until ``timeout`` seconds."""
    from pipeline.sync.switchlog import PAUSE_ENV

    with killed_at_the_end(argv, {**os.environ, PAUSE_ENV: str(marker)}) as proc:
        deadline = time.monotonic() + timeout
        while not marker.exists():
            assert proc.poll() is None, f"the sync exited before the switch: {proc.communicate()}"
            assert time.monotonic() < deadline, "the sync never reached the switch"
            time.sleep(0.05)


def enospc_after(n: int) -> Callable[[str, str], None]:
    """Returns a copy function (a target's ``copy_file`` hook) that copies ``n`` files and then fails with a real
    ENOSPC error: a syndic whose disk fills up mid-copy, without mounting a small file system."""
    calls = {"n": 0}

    def copy(src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] > n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), dst)
        shutil.copyfile(src, dst)

    return copy


@contextmanager
def tiny_tmpfs(mnt: Path, size: str, inodes: int) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (as for ``mount -o size=``) with room for ``inodes`` inodes at ``mnt`` (made here);
    yields ``mnt``, lazily unmounted afterwards. Skips the test where mounting is not allowed (no privileges)."""
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},nr_inodes={inodes}", "tmpfs", str(mnt)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def sample_files(n: int = 20, size: int = 300) -> dict[str, str]:
    """A small file_roots tree: a top file, states, and custom modules."""
    files = {"top.sls": "base:\n  '*':\n    - web\n", "_modules/ops_app.py": "def health():\n    return True\n"}
    for i in range(n):
        files[f"web/part{i:03d}.sls"] = (f"# state {i}\n" + "x" * size + "\n")
    files["web/files/run.sh"] = "#!/bin/sh\necho ok\n"
    return files


def served(root: Path) -> str | None:
    """The release id ``base`` points at in a syndic directory (read directly, independent of saltpipe)."""
    link = root / "current"
    if not link.is_symlink():
        return None
    return os.readlink(link).rsplit("/", 1)[-1]
