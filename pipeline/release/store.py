"""The local release store: built releases under ``<state_dir>/releases/<id>/``, immutable once written.

Layout of one release::

    <state_dir>/releases/<id>/
        manifest.json    every file: path, size, mode, sha256 (+ the id and digest, checked on load)
        release.json     where it came from: the commit it was first built from, when
        tree/            the file_roots tree, as a syndic serves it (saltpipe-release.json at its root)

A release directory appears by one ``rename`` of a fully written build directory, so a reader never sees a half
built release. An existing release is never overwritten: adding the same content again returns the existing one
(after checking its tree is intact); different content under an existing id is refused.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import SyncError, UsageError
from pipeline.jsonfile import read_json_object
from pipeline.release.manifest import Manifest, ManifestError, check_release_id
from pipeline.release.tree import Mismatch, compare, describe_mismatches, scan_tree

MANIFEST_FILE = "manifest.json"
META_FILE = "release.json"
#: Which reviewed merge request each commit that built the release came from (append-only, beside the tree).
PROVENANCE_FILE = "provenance.jsonl"
TREE_DIR = "tree"


class ReleaseStoreError(SyncError):
    """The local release store holds something it should not (a damaged or conflicting release)."""


@dataclass(frozen=True)
class Release:
    """A built release in the store. ``tree`` is the directory to copy to syndics."""

    id: str
    manifest: Manifest
    path: Path
    meta: dict[str, Any]

    @property
    def tree(self) -> Path:
        return self.path / TREE_DIR

    @property
    def commit(self) -> str | None:
        value = self.meta.get("commit")
        return value if isinstance(value, str) else None

    @property
    def built_at(self) -> str | None:
        value = self.meta.get("built_at")
        return value if isinstance(value, str) else None

    def provenance(self) -> list[dict[str, Any]]:
        """Where this content came from, oldest first: one entry per reviewed build (``commit``,
        ``merge_request``: iid, url, title, approvers; ``recorded_at``). The same content built from two
        commits has two entries; the release itself (tree, manifest, meta) never changes."""
        try:
            lines = (self.path / PROVENANCE_FILE).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for number, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
            except ValueError:
                raise ReleaseStoreError(f"{self.path / PROVENANCE_FILE}:{number}: not a provenance record",
                                        hint="the file was edited or damaged; restore it from a backup") from None
            if isinstance(entry, dict):
                out.append(entry)
        return out

    def origin(self) -> tuple[str | None, dict[str, Any] | None]:
        """(commit, merge request) of the latest reviewed build, else (the first build's commit, None)."""
        entries = self.provenance()
        if entries:
            mr = entries[-1].get("merge_request")
            return entries[-1].get("commit"), mr if isinstance(mr, dict) else None
        return self.commit, None


@dataclass(frozen=True)
class StoreEntry:
    """One directory of the store as :meth:`ReleaseStore.entries` finds it: the release, or what is wrong."""

    id: str
    path: Path
    release: Release | None
    problem: str | None = None

    @property
    def damaged(self) -> bool:
        return self.problem is not None


class ReleaseStore:
    """Releases under ``root`` (normally ``<state_dir>/releases``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> "ReleaseStore":
        return cls(Path(state_dir) / "releases")

    def path_of(self, release_id: str) -> Path:
        return self.root / check_release_id(release_id)

    def exists(self, release_id: str) -> bool:
        return (self.path_of(release_id) / MANIFEST_FILE).is_file()

    def get(self, release_id: str) -> Release:
        """The release ``release_id``; :class:`UsageError` when it was never built here."""
        path = self.path_of(release_id)
        if not (path / MANIFEST_FILE).is_file():
            raise UsageError(
                f"release {release_id} is not in the release store {self.root}",
                hint="build it with `saltpipe release build --rev <commit>`; `saltpipe release list` shows what exists",
            )
        manifest = Manifest.load(path / MANIFEST_FILE)
        if manifest.release_id != release_id:
            raise ReleaseStoreError(
                f"{path}: directory name {release_id} does not match its manifest ({manifest.release_id})",
                hint=f"remove {path} and rebuild the release",
            )
        return Release(release_id, manifest, path, read_json_object(path / META_FILE))

    def list(self) -> list[Release]:
        """Every intact release in the store, oldest build first (:meth:`entries` shows the damaged ones too)."""
        return [e.release for e in self.entries() if e.release is not None and not e.damaged]

    def entries(self, *, verify: bool = False) -> list[StoreEntry]:
        """Every release directory of the store, oldest build first, damaged ones last with what is wrong: no
        or an unreadable manifest, a manifest of another id, no ``tree/``; with ``verify`` also a tree whose
        files differ from the manifest (reads every file)."""
        good: list[StoreEntry] = []
        damaged: list[StoreEntry] = []
        if not self.root.is_dir():
            return good
        for child in sorted(self.root.iterdir()):
            if child.name.startswith(".") or not child.is_dir():
                continue  # .build-* directories are builds in progress
            entry = self._entry(child, verify)
            (damaged if entry.damaged else good).append(entry)
        good.sort(key=lambda e: ((e.release.built_at if e.release else None) or "", e.id))
        return good + damaged

    def _entry(self, child: Path, verify: bool) -> StoreEntry:
        if not (child / MANIFEST_FILE).is_file():
            return StoreEntry(child.name, child, None, f"no {MANIFEST_FILE}")
        try:
            release = self.get(child.name)
        except (UsageError, ManifestError, ReleaseStoreError) as exc:
            return StoreEntry(child.name, child, None, exc.message)
        if not release.tree.is_dir():
            return StoreEntry(child.name, child, release, f"no {TREE_DIR}/ directory")
        if verify:
            problems = self.verify(release)
            if problems:
                return StoreEntry(child.name, child, release, "tree changed after the build: " + describe_mismatches(problems))
        return StoreEntry(child.name, child, release)

    def record_provenance(self, release: Release, commit: str, merge_request: dict[str, Any]) -> dict[str, Any]:
        """Append that ``commit`` (which built ``release``) came from ``merge_request``; fsynced."""
        from datetime import datetime, timezone

        entry = {"commit": commit, "merge_request": merge_request,
                 "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        with open(release.path / PROVENANCE_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return entry

    def verify(self, release: Release) -> list[Mismatch]:
        """Differences between the stored tree and the manifest (empty when intact)."""
        return compare(release.manifest.expected_files(), scan_tree(release.tree))

    def new_build_dir(self) -> Path:
        """A private directory to assemble a release in; hand it to :meth:`add`."""
        self.root.mkdir(parents=True, exist_ok=True)
        import tempfile

        return Path(tempfile.mkdtemp(prefix=".build-", dir=self.root))

    def add(self, build_dir: Path, manifest: Manifest, meta: dict[str, Any]) -> tuple[Release, bool]:
        """Publish ``build_dir`` (holding ``tree/``) as release ``manifest.release_id``.

        Returns ``(release, created)``. When the id exists already with the same manifest, ``build_dir`` is
        discarded and the existing release returned (``created`` is False) - after checking its tree, because an
        immutable release that was edited in place must not be handed out as if it were intact.
        """
        release_id = manifest.release_id
        manifest.write(build_dir / MANIFEST_FILE)
        (build_dir / META_FILE).write_text(json.dumps({"id": release_id, **meta}, indent=1) + "\n", encoding="utf-8")
        final = self.path_of(release_id)
        try:
            os.rename(build_dir, final)
            created = True
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            shutil.rmtree(build_dir, ignore_errors=True)
            created = False
        release = self.get(release_id) if created else self._existing(final, manifest)
        return release, created

    def _existing(self, final: Path, manifest: Manifest) -> Release:
        try:
            existing = Manifest.load(final / MANIFEST_FILE)
        except ManifestError as exc:
            raise ReleaseStoreError(
                f"{final}: an existing release with this id has an unreadable manifest ({exc.message})",
                hint=f"releases are immutable, so saltpipe will not overwrite it; inspect and remove {final}, then rebuild",
            ) from None
        if existing.digest != manifest.digest:
            raise ReleaseStoreError(
                f"{final}: an existing release with id {manifest.release_id} has different content "
                f"(manifest digest {existing.digest[:16]}, new {manifest.digest[:16]})",
                hint=f"releases are immutable, so saltpipe will not overwrite it; inspect and remove {final}",
            )
        release = self.get(manifest.release_id)
        problems = self.verify(release)
        if problems:
            raise ReleaseStoreError(
                f"{release.tree}: the stored release {release.id} was changed after it was built: "
                + describe_mismatches(problems),
                hint=f"releases are immutable; remove {final} and run `saltpipe release build` again",
            )
        return release
