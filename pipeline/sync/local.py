"""The local file_roots target: the syndic master runs on this host and its directory is a local path."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.jsonfile import read_json_object
from pipeline.release.manifest import MARKER_NAME, RELEASE_ID_RE
from pipeline.release.tree import TreeScan, scan_tree
from pipeline.sync.layout import (
    BASE_LINK,
    ENVS_DIR,
    RELEASES_DIR,
    STAGING_PREFIX,
    STATE_FILE,
    TMP_PREFIX,
    link_target,
    release_of_target,
    staging_name,
)
from pipeline.sync.ssh.scripts import SCAN, parse_scan
from pipeline.sync.target import CopyStats, FileRootsTarget, TargetError, TargetSnapshot

#: ``copy_file(src, dst)``; tests substitute one that fails like a full disk or a killed copy.
CopyFile = Callable[[str, str], None]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _copy_new(src: str, dst: str) -> int:
    """Copy ``src`` to ``dst``, which this creates (``O_EXCL``: an existing file, e.g. a hard link into another
    release, is replaced, never written through), with ``src``'s mode; returns the bytes copied.

    In-kernel (``copy_file_range``, else ``sendfile``) and with the GIL released while it runs; one open, one
    fstat and one fchmod per file beside the copy itself, as ``cp`` does.
    """
    fin = os.open(src, os.O_RDONLY | _CLOEXEC)
    try:
        st = os.fstat(fin)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
        try:
            fout = os.open(dst, flags, 0o600)
        except FileExistsError:
            os.unlink(dst)
            fout = os.open(dst, flags, 0o600)
        try:
            left = st.st_size
            while left > 0:
                try:
                    done = os.copy_file_range(fin, fout, left)
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                        raise
                    done = os.sendfile(fout, fin, None, left)
                if done == 0:  # the source shrank under us; the verification will say so
                    break
                left -= done
            os.fchmod(fout, stat.S_IMODE(st.st_mode))
        finally:
            os.close(fout)
        return st.st_size - left
    finally:
        os.close(fin)


def _with_parents(dest_root: str, rels: Iterable[str]) -> Iterator[tuple[str, str]]:
    """``(rel, dest_root/rel)`` for each of ``rels``, each destination directory created once on the way (the
    per-file hot path of a full release: plain strings, one ``makedirs`` per directory)."""
    made: set[str] = set()
    for rel in rels:
        dest = f"{dest_root}/{rel}"
        parent = os.path.dirname(dest)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        yield rel, dest


class LocalTarget(FileRootsTarget):
    """A syndic whose directory is ``root`` on this host.

    ``copy_file(src, dst)``, if given, copies each changed file instead of the built-in in-kernel copy (tests
    pass one that fails like a full disk or dies mid-way); the target then sets the mode itself.
    """

    def __init__(
        self, name: str, root: Path, *, copy_file: CopyFile | None = None, salt_cachedir: Path | None = None
    ) -> None:
        self.name = name
        self.root = Path(root)
        self._copy_file = copy_file
        self.salt_cachedir = Path(salt_cachedir) if salt_cachedir else None

    def describe(self) -> str:
        return f"local:{self.root}"

    # -- helpers ------------------------------------------------------------------------------------------------

    @contextmanager
    def _step(self, step: str) -> Iterator[None]:
        """Turn OS errors into :class:`TargetError` naming this syndic, the step and the cause."""
        try:
            yield
        except OSError as exc:
            cause = exc.strerror or str(exc)
            if exc.filename:
                cause = f"{exc.filename}: {cause}"
            raise TargetError(self.name, step, cause, hint=_hint(exc)) from exc

    def _releases(self) -> Path:
        return self.root / RELEASES_DIR

    # -- the interface ----------------------------------------------------------------------------------------------

    def snapshot(self) -> TargetSnapshot:
        with self._step("read file_roots directory"):
            if not self.root.is_dir():
                raise TargetError(
                    self.name,
                    "read file_roots directory",
                    f"{self.root} does not exist or is not a directory",
                    hint=f"create it (mkdir -p {self.root}) where syndic {self.name}'s master points its "
                    f"file_roots (docs/sync.md), or fix file_roots.path of syndic {self.name} in the pipeline config",
                )
            self._releases().mkdir(exist_ok=True)
            (self.root / ENVS_DIR).mkdir(exist_ok=True)
            releases: list[str] = []
            staging: list[str] = []
            for child in sorted(self._releases().iterdir()):
                if child.name.startswith(STAGING_PREFIX):
                    staging.append(child.name)
                elif RELEASE_ID_RE.match(child.name) and child.is_dir() and not child.is_symlink():
                    releases.append(child.name)
            links: dict[str, str | None] = {}
            if (self.root / BASE_LINK).is_symlink():
                links[BASE_LINK] = release_of_target(os.readlink(self.root / BASE_LINK))
            for child in sorted((self.root / ENVS_DIR).iterdir()):
                if child.is_symlink():
                    links[f"{ENVS_DIR}/{child.name}"] = release_of_target(os.readlink(child))
            state = read_json_object(self.root / STATE_FILE)
            st = os.statvfs(self.root)
            return TargetSnapshot(tuple(releases), tuple(staging), links, state, st.f_bavail * st.f_frsize)

    def prepare_staging(self, release_id: str, donor: str | None, keep: list[str], drop: list[str]) -> None:
        staging = self._releases() / staging_name(release_id)
        with self._step("prepare staging"):
            if staging.exists():
                shutil.rmtree(staging)
            staging.mkdir()
        if donor is None:
            return
        source, dest_root = str(self._releases() / donor), str(staging)
        with self._step(f"hard-link unchanged files from {donor}"):
            for rel, dest in _with_parents(dest_root, keep):
                os.link(f"{source}/{rel}", dest)

    def copy_files(self, release_id: str, source_tree: Path, paths: list[str]) -> CopyStats:
        staging = self._releases() / staging_name(release_id)
        total = 0
        with self._step("copy changed files"):
            if self._copy_file is None:
                src_root, dest_root = str(source_tree), str(staging)
                for rel, dest in _with_parents(dest_root, paths):
                    total += _copy_new(f"{src_root}/{rel}", dest)
                return CopyStats(files=len(paths), bytes=total, wire_bytes=None)
            made: set[Path] = set()
            for rel in paths:
                src = source_tree / rel
                dest = staging / rel
                if dest.parent not in made:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    made.add(dest.parent)
                if os.path.lexists(dest):
                    # A hard link shares its inode with an older release: replace it, never write through it.
                    os.unlink(dest)
                self._copy_file(str(src), str(dest))
                os.chmod(dest, os.stat(src).st_mode & 0o7777)
                total += os.path.getsize(dest)
        return CopyStats(files=len(paths), bytes=total, wire_bytes=None)

    def scan(self, name: str) -> TreeScan:
        with self._step(f"verify {name}"):
            path = self._releases() / name
            if not path.is_dir():
                raise FileNotFoundError(2, "no such directory", str(path))
            # The SSH target's scan script, run here: find + OpenSSL's sha256 in child processes, so syndics
            # verified at once do not take turns on this process's GIL for every file. Python's own scan is the
            # fallback (no sh or GNU find here, or anything the script did not like: it then reports the real
            # error, if there is one).
            try:
                proc = subprocess.run(["sh", "-c", SCAN, "sh", str(self.root), name], capture_output=True,
                                      check=False)
            except OSError:
                proc = None
            if proc is not None and proc.returncode == 0 and not proc.stderr:
                return parse_scan(proc.stdout)
            return scan_tree(path)

    def commit_staging(self, release_id: str) -> None:
        with self._step("publish staged release"):
            os.rename(self._releases() / staging_name(release_id), self._releases() / release_id)

    def discard(self, name: str) -> None:
        with self._step(f"remove {name}"):
            path = self._releases() / name
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.exists():
                shutil.rmtree(path)

    def set_link(self, link: str, release_id: str) -> None:
        with self._step(f"switch {link}"):
            dest = self.root / link
            if not (self._releases() / release_id).is_dir():
                raise TargetError(self.name, f"switch {link}", f"release {release_id} is not staged here")
            if dest.is_dir() and not dest.is_symlink():
                # salt-master creates missing file_roots directories when it starts, so before the first sync
                # the link's place may hold an empty directory. Anything else there is not ours to remove.
                try:
                    dest.rmdir()
                except OSError:
                    raise TargetError(
                        self.name, f"switch {link}", f"{dest} is a directory with files in it, not a saltpipe link",
                        hint=f"move {dest} away (saltpipe serves releases through a symlink there), then re-run",
                    ) from None
            tmp = dest.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}"
            os.symlink(link_target(link, release_id), tmp)
            try:
                os.rename(tmp, dest)  # atomic: a reader sees the old tree or the new one, never neither
            except OSError:
                tmp.unlink(missing_ok=True)
                raise

    def remove_link(self, link: str) -> None:
        with self._step(f"remove {link}"):
            path = self.root / link
            if path.is_symlink():
                path.unlink()

    def read_served_marker(self, link: str) -> bytes | None:
        with self._step(f"read {link}/{MARKER_NAME}"):
            try:
                return (self.root / link / MARKER_NAME).read_bytes()
            except FileNotFoundError:
                return None

    def clear_file_list_cache(self, saltenv: str) -> bool:
        if self.salt_cachedir is None:
            return False
        lists = self.salt_cachedir / "file_lists"
        with self._step(f"clear the file list cache of {saltenv} in {lists}"):
            for backend in sorted(lists.iterdir()) if lists.is_dir() else ():
                if backend.is_dir():
                    (backend / f"{saltenv}.p").unlink(missing_ok=True)
        return True

    def write_state(self, state: dict[str, Any]) -> None:
        with self._step("write state"):
            tmp = self.root / f"{TMP_PREFIX}{uuid.uuid4().hex}"
            tmp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, self.root / STATE_FILE)



def _hint(exc: OSError) -> str | None:
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "free space on the syndic's file system (old releases are pruned after a successful switch), then re-run"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "saltpipe needs write access to the syndic's file_roots directory"
    return "fix the cause and re-run; the syndic keeps serving its previous release until every syndic is staged"
