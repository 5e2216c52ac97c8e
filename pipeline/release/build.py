"""``release build``: turn one Git commit into an immutable, content-addressed release.

Contract:

* The input is a commit, read through gitpython's object database - never the working tree, so uncommitted
  or ignored files cannot leak into a release, and the same commit always gives the same bytes.
* The release tree is the commit's ``states/`` at the root of the tree, plus every top-level directory whose
  name starts with ``_`` (``_modules/``, ``_states/``, ``_grains/``, ...) under its own name - exactly what
  Salt's ``file_roots`` must serve for ``salt://top.sls`` and ``saltutil.sync_*`` to work. ``layout:`` in the
  config (:mod:`pipeline.layout`) moves that root (the repository's top, ``salt/``), adds roots merged into it,
  names extension directories anywhere and excludes files (docs, tests, saltpipe's own ``salt/pipeline.yaml``).
* Symlinks are materialised as the files they point to, so a syndic's tree holds only regular files (what the
  manifest can describe and a hard link can share). A symlink is refused when it is absolute, leaves the
  repository, ends outside the release tree, dangles, or loops. Submodules (gitlinks) are refused, and so are
  names that could escape a directory or clash after mapping. Each refusal names the path in the commit.
* The id is derived from the manifest (:mod:`pipeline.release.manifest`), so the same content gives the same id.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import git
from gitdb.exc import BadName, BadObject

from pipeline.errors import GitError
from pipeline.layout import RepoLayout
from pipeline.release.manifest import ALLOWED_MODES, MARKER_NAME, Manifest, ManifestEntry
from pipeline.release.store import TREE_DIR, Release, ReleaseStore

#: The directory whose content becomes the root of the release tree.
STATES_DIR = "states"
#: How many symlinks one path may pass through (Linux uses 40 too).
_MAX_LINKS = 40


class ReleaseContentError(GitError):
    """The commit holds something that must not become part of a release; ``path`` names it."""

    def __init__(self, path: str, message: str, *, hint: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}", hint=hint)


@dataclass(frozen=True)
class BuildContext:
    """Inputs of a build: the repository, the revision to build and where releases are stored."""

    repo: Path
    rev: str
    store: ReleaseStore
    layout: RepoLayout = RepoLayout()


@dataclass(frozen=True)
class BuildResult:
    """The release, the commit it was built from, and whether it was new (False: same content existed)."""

    release: Release
    commit: str
    created: bool


def build_release(ctx: BuildContext) -> BuildResult:
    """Build (or find, when the same content was built before) the release of ``ctx.rev``."""
    try:
        repo = git.Repo(ctx.repo)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitError(f"{ctx.repo}: not a Git repository", hint="run saltpipe inside the checkout or pass --repo") from None
    try:
        commit = repo.commit(ctx.rev)
    except (BadName, BadObject, ValueError, git.GitCommandError):
        raise GitError(
            f"{ctx.repo}: revision {ctx.rev!r} does not name a commit",
            hint="give a branch, tag or commit SHA that exists locally (`git fetch` first if it is new)",
        ) from None
    files = collect_files(commit, ctx.layout)
    objects = _Objects(repo)

    build_dir = ctx.store.new_build_dir()
    try:
        entries = _write_tree(build_dir / TREE_DIR, files, objects)
        manifest = Manifest.of(entries)
        marker = build_dir / TREE_DIR / MARKER_NAME
        marker.write_bytes(manifest.marker_bytes())
        os.chmod(marker, 0o644)
        meta = {
            "commit": commit.hexsha,
            "rev": ctx.rev,
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "files": len(entries),
            "bytes": manifest.total_bytes,
        }
        release, created = ctx.store.add(build_dir, manifest, meta)
    finally:
        if build_dir.exists():
            shutil.rmtree(build_dir, ignore_errors=True)
    return BuildResult(release=release, commit=commit.hexsha, created=created)


# ----------------------------------------------------------------------------------------------------------------
# Reading the commit
#
# The walk reads raw tree entries (sha, mode, name) from the object database instead of gitpython's Tree objects:
# gitpython refuses to even construct an object for a name like ".." (and cannot name a gitlink without a
# .gitmodules), while we must see such entries to refuse them with the path in the message.


@dataclass(frozen=True)
class SourceFile:
    """A file of the release: where it lands, the blob holding its bytes, its mode, and where it came from."""

    release_path: str
    binsha: bytes
    mode: int
    origin: str


@dataclass(frozen=True)
class _Entry:
    binsha: bytes
    mode: int
    name: str

    @property
    def kind(self) -> int:
        return self.mode >> 12

    @property
    def is_tree(self) -> bool:
        return self.kind == _KIND_TREE


_KIND_TREE = 0o04
_KIND_FILE = 0o10
_KIND_LINK = 0o12
_KIND_GITLINK = 0o16


class _Objects:
    """Raw reads from a repository's object database, with tree entries cached by sha."""

    def __init__(self, repo: git.Repo) -> None:
        self.odb = repo.odb
        self._trees: dict[bytes, list[_Entry]] = {}

    def entries(self, binsha: bytes) -> list[_Entry]:
        if binsha not in self._trees:
            self._trees[binsha] = _parse_tree(self.odb.stream(binsha).read(), len(binsha))
        return self._trees[binsha]

    def data(self, binsha: bytes) -> bytes:
        return self.odb.stream(binsha).read()


def _parse_tree(raw: bytes, sha_len: int) -> list[_Entry]:
    """Entries of a raw Git tree object: ``<octal mode> <name>NUL<binary sha>`` repeated.

    Parsed here rather than by gitpython because its parser raises on names such as ``..`` before we can report
    which path holds them. Names are decoded as UTF-8 with surrogate escapes, so :func:`_check_name` can refuse
    undecodable ones by path.
    """
    entries: list[_Entry] = []
    pos = 0
    while pos < len(raw):
        space = raw.index(b" ", pos)
        nul = raw.index(b"\0", space)
        mode = int(raw[pos:space], 8)
        name = raw[space + 1 : nul].decode("utf-8", "surrogateescape")
        entries.append(_Entry(raw[nul + 1 : nul + 1 + sha_len], mode, name))
        pos = nul + 1 + sha_len
    return entries


def collect_files(commit: git.Commit, layout: RepoLayout | None = None) -> list[SourceFile]:
    """Every file of the release tree of ``commit``, symlinks resolved; raises :class:`ReleaseContentError`."""
    layout = layout or RepoLayout()
    objects = _Objects(commit.repo)
    root = _Entry(commit.tree.binsha, 0o040000, "")
    walker_root = _Walker(objects, root, ("",), layout)
    sources: list[tuple[_Entry, str, str]] = []  # (tree, its repository path, where it lands in the release)
    for i, root_path in enumerate(layout.roots):
        entry = root if root_path == "." else walker_root.lookup(root_path.split("/"))
        if entry is None:
            if i > 0 or len(layout.roots) > 1:
                raise ReleaseContentError(
                    f"{root_path}/", f"commit {commit.hexsha[:12]} has no {root_path}/ directory (a root in layout.roots)",
                    hint="commit it, or remove it from layout in the pipeline config",
                )
            raise ReleaseContentError(
                f"{root_path}/", f"commit {commit.hexsha[:12]} has no {root_path}/ directory",
                hint=f"a release is built from {root_path}/ (and _modules/, _states/, ...); commit them first, or set "
                "layout.states_root in the pipeline config (`saltpipe init` detects it)",
            )
        if not entry.is_tree:
            raise ReleaseContentError(root_path, "must be a directory")
        sources.append((entry, "" if root_path == "." else root_path, ""))
    top_entries = objects.entries(root.binsha)
    for ext in layout.auto_extensions([e.name for e in top_entries if e.is_tree or e.kind == _KIND_GITLINK]):
        parts = ext.split("/")
        for depth, part in enumerate(parts):
            _check_name(part, "/".join(parts[: depth + 1]))
        entry = walker_root.lookup(parts)
        if entry is not None and entry.kind == _KIND_GITLINK:
            raise ReleaseContentError(ext, "is a submodule (gitlink); releases hold plain files only",
                                      hint="vendor the files into the repository instead")
        if entry is not None and entry.is_tree:
            sources.append((entry, ext, parts[-1]))
        elif layout.extensions:
            raise ReleaseContentError(f"{ext}/", f"commit {commit.hexsha[:12]} has no {ext}/ directory (in layout.extensions)",
                                      hint="commit it, or remove it from layout.extensions")
    walker = _Walker(objects, root, tuple(path for _, path, _ in sources), layout)
    out: dict[str, SourceFile] = {}
    for entry, repo_path, release_prefix in sources:
        for sf in walker.walk(entry, repo_path, release_prefix, frozenset()):
            if sf.release_path == MARKER_NAME:
                raise ReleaseContentError(sf.origin, f"{MARKER_NAME} is reserved for saltpipe's release marker")
            if sf.release_path in out:
                raise ReleaseContentError(
                    sf.origin,
                    f"lands on {sf.release_path} in the release tree, as {out[sf.release_path].origin} does",
                    hint=f"{layout.states_root}/ is the root of file_roots; rename one of them",
                )
            out[sf.release_path] = sf
    return sorted(out.values(), key=lambda s: s.release_path)


class _Walker:
    """Walks Git trees, checking names and following symlinks inside the commit."""

    def __init__(self, objects: _Objects, root: _Entry, sources: tuple[str, ...], layout: RepoLayout) -> None:
        self.objects = objects
        self.root = root
        self.sources = sources
        self.layout = layout

    def lookup(self, parts: list[str]) -> _Entry | None:
        """The entry at ``parts`` below the root, symlinks not followed."""
        return self._lookup(parts)

    def walk(self, tree: _Entry, repo_dir: str, release_dir: str, expanding: frozenset[str]) -> Iterator[SourceFile]:
        for item in self.objects.entries(tree.binsha):
            repo_path = f"{repo_dir}/{item.name}" if repo_dir else item.name
            if self.layout.excludes(repo_path):
                continue
            _check_name(item.name, repo_path)
            release_path = f"{release_dir}/{item.name}" if release_dir else item.name
            yield from self._entry(item, repo_path, release_path, expanding)

    def _entry(self, item: _Entry, repo_path: str, release_path: str, expanding: frozenset[str]) -> Iterator[SourceFile]:
        if item.is_tree:
            yield from self.walk(item, repo_path, release_path, expanding)
        elif item.kind == _KIND_GITLINK:
            raise ReleaseContentError(repo_path, "is a submodule (gitlink); releases hold plain files only",
                                      hint="vendor the files into the repository instead")
        elif item.kind == _KIND_LINK:
            target_path, target = self._resolve(repo_path, item)
            if target.is_tree:
                if target_path in expanding or repo_path.startswith(target_path + "/"):
                    raise ReleaseContentError(repo_path, f"symlink to {target_path} makes a directory cycle")
                yield from self.walk(target, target_path, release_path, expanding | {target_path})
            else:
                yield SourceFile(release_path, target.binsha, _file_mode(target, target_path), repo_path)
        elif item.kind == _KIND_FILE:
            yield SourceFile(release_path, item.binsha, _file_mode(item, repo_path), repo_path)
        else:
            raise ReleaseContentError(repo_path, f"has Git mode {item.mode:o}, not a regular file, directory or symlink")

    def _resolve(self, link_path: str, link: _Entry) -> tuple[str, _Entry]:
        """Follow the symlink at ``link_path`` (and any symlinks on the way) to a file or tree in the commit."""
        resolved: list[str] = []
        pending = link_path.split("/")[:-1] + self._link_parts(link_path, link)
        hops = 1
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    raise ReleaseContentError(link_path, "symlink points outside the repository")
                resolved.pop()
                continue
            here = "/".join(resolved + [part])
            obj = self._lookup(resolved + [part])
            if obj is None:
                raise ReleaseContentError(link_path, f"symlink points to {here}, which is not in the commit")
            if obj.kind == _KIND_LINK:
                hops += 1
                if hops > _MAX_LINKS:
                    raise ReleaseContentError(link_path, "symlink loop (too many levels of symlinks)")
                # The inner link is relative to its own directory, which is ``resolved``.
                pending = self._link_parts(link_path, obj) + pending
                continue
            if obj.kind == _KIND_GITLINK:
                raise ReleaseContentError(link_path, f"symlink points into the submodule {here}")
            if pending and not obj.is_tree and any(p not in ("", ".") for p in pending):
                raise ReleaseContentError(link_path, f"symlink passes through {here}, which is not a directory")
            resolved.append(part)
        target_path = "/".join(resolved)
        if not target_path:
            raise ReleaseContentError(link_path, "symlink points at the repository root, outside the release tree")
        if not any(s == "" or target_path == s or target_path.startswith(s + "/") for s in self.sources):
            raise ReleaseContentError(
                link_path,
                f"symlink leaves the release tree (points to {target_path}; only "
                f"{', '.join(s + '/' for s in self.sources)} are released)",
            )
        obj = self._lookup(resolved)
        assert obj is not None
        return target_path, obj

    def _link_parts(self, link_path: str, link: _Entry) -> list[str]:
        try:
            target = self.objects.data(link.binsha).decode("utf-8")
        except UnicodeDecodeError:
            raise ReleaseContentError(link_path, "symlink target is not UTF-8") from None
        if target.startswith("/"):
            raise ReleaseContentError(link_path, f"symlink is absolute ({target}); it leaves the tree")
        if "\0" in target:
            raise ReleaseContentError(link_path, "symlink target contains a NUL byte")
        return target.split("/")

    def _lookup(self, parts: list[str]) -> _Entry | None:
        """The entry at ``parts`` below the root without following symlinks on the way (the caller does)."""
        node = self.root
        for part in parts:
            if not node.is_tree:
                return None
            node = next((e for e in self.objects.entries(node.binsha) if e.name == part), None)
            if node is None:
                return None
        return node


def _check_name(name: str, repo_path: str) -> None:
    """Refuse names that could escape a directory or that no file system can hold."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise ReleaseContentError(repo_path, f"name {name!r} could escape its directory")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        # Tabs and newlines in names would break line-based tools on the syndic (find, sha256sum, xargs).
        raise ReleaseContentError(repr(repo_path)[1:-1], "name contains a control character (tab, newline, ...)")
    if name.lower() == ".git":
        raise ReleaseContentError(repo_path, "a .git entry inside a commit is refused")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ReleaseContentError(repo_path.encode("utf-8", "replace").decode(), "name is not valid UTF-8") from None


def _file_mode(entry: _Entry, repo_path: str) -> int:
    """0755 for an executable blob, 0644 otherwise (Git keeps only the executable bit)."""
    if entry.kind != _KIND_FILE:
        raise ReleaseContentError(repo_path, f"has Git mode {entry.mode:o}, not a regular file")
    mode = 0o755 if entry.mode & 0o111 else 0o644
    assert mode in ALLOWED_MODES
    return mode


def _write_tree(tree_dir: Path, files: list[SourceFile], objects: "_Objects") -> list[ManifestEntry]:
    """Write every file under ``tree_dir`` with its manifest mode; return the manifest entries."""
    entries: list[ManifestEntry] = []
    tree_dir.mkdir(parents=True)
    for sf in files:
        dest = tree_dir / sf.release_path
        dest.parent.mkdir(parents=True, exist_ok=True)
        data = objects.data(sf.binsha)
        with open(dest, "wb") as fh:
            fh.write(data)
        os.chmod(dest, sf.mode)
        entries.append(ManifestEntry(sf.release_path, len(data), sf.mode, hashlib.sha256(data).hexdigest()))
    return entries
