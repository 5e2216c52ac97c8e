"""The file_roots target interface: the few primitive operations the sync engine needs on one syndic.

Two real implementations: :class:`pipeline.sync.local.LocalTarget` (a directory on this host) and
:class:`pipeline.sync.ssh.SshTarget` (a directory on another host, reached with ssh and rsync). The engine
(:mod:`pipeline.sync.engine`) decides *what* to do - which files to link, whether the staged tree matches the
manifest, when to switch; a target only does it, and reports failures as :class:`TargetError` naming the syndic,
the step and the cause. Every primitive is safe to repeat after a crash: none of them changes what Salt serves
except :meth:`FileRootsTarget.set_link` and :meth:`FileRootsTarget.remove_link`, which are single renames/unlinks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import SyncError
from pipeline.release.tree import TreeScan
from pipeline.sync.layout import BASE_LINK


class TargetError(SyncError):
    """One syndic's file_roots could not be read or changed. ``syndic``, ``step`` and ``cause`` say where and why."""

    def __init__(self, syndic: str, step: str, cause: str, *, hint: str | None = None) -> None:
        self.syndic = syndic
        self.step = step
        self.cause = cause
        super().__init__(f"syndic {syndic}: {step}: {cause}", hint=hint)


@dataclass(frozen=True)
class TargetSnapshot:
    """What one syndic's directory holds right now.

    ``links`` maps each serving link (``base``, ``envs/<saltenv>``) to the release id it points at (``None``
    when it points at something that is not a release). ``state`` is the parsed saltpipe-state.json (``{}`` when
    absent or unreadable). ``free_bytes`` is the free space of the file system (``None`` when unknown).
    """

    releases: tuple[str, ...] = ()
    staging: tuple[str, ...] = ()
    links: dict[str, str | None] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    free_bytes: int | None = None

    @property
    def base(self) -> str | None:
        return self.links.get(BASE_LINK)

    def referenced(self) -> set[str]:
        """Releases some link serves; they are never pruned or replaced."""
        return {r for r in self.links.values() if r}


@dataclass(frozen=True)
class CopyStats:
    """What a copy moved: files and payload bytes, and bytes on the wire where a transport measures them."""

    files: int
    bytes: int
    wire_bytes: int | None = None


class FileRootsTarget(ABC):
    """One syndic's saltpipe directory (see :mod:`pipeline.sync.layout`)."""

    #: The syndic's name (its Salt id), used in every message.
    name: str

    @abstractmethod
    def describe(self) -> str:
        """Where the directory is, for humans (``local:/srv/...``, ``ssh://user@host:22/srv/...``)."""

    @abstractmethod
    def snapshot(self) -> TargetSnapshot:
        """Read the directory; create ``releases/`` and ``envs/`` if missing. The directory itself must exist."""

    @abstractmethod
    def prepare_staging(self, release_id: str, donor: str | None, keep: list[str], drop: list[str]) -> None:
        """Start ``releases/.staging-<id>/`` afresh as hard links to the files of release ``donor``.

        ``keep`` are the donor's files the new release holds unchanged (same path, content and mode): they are
        linked, not copied. ``drop`` are the donor's other files: they must not be in the staging dir (a target
        may link the whole donor tree and then remove ``drop``). ``donor`` None means: start empty.
        """

    @abstractmethod
    def copy_files(self, release_id: str, source_tree: Path, paths: list[str]) -> CopyStats:
        """Copy ``paths`` (relative, from ``source_tree`` in the local release store) into the staging dir."""

    @abstractmethod
    def scan(self, name: str) -> TreeScan:
        """Size, mode and sha256 of every file under ``releases/<name>`` (a release id or a staging name)."""

    @abstractmethod
    def commit_staging(self, release_id: str) -> None:
        """Rename the staging dir to ``releases/<id>`` (which must not exist)."""

    @abstractmethod
    def discard(self, name: str) -> None:
        """Remove ``releases/<name>`` (a release or staging dir) if present."""

    @abstractmethod
    def set_link(self, link: str, release_id: str) -> None:
        """Point ``link`` (``base`` or ``envs/<saltenv>``) at ``releases/<id>`` atomically (rename of a new link)."""

    @abstractmethod
    def remove_link(self, link: str) -> None:
        """Remove the serving link ``link`` if present."""

    @abstractmethod
    def read_served_marker(self, link: str) -> bytes | None:
        """The bytes of ``<link>/saltpipe-release.json`` as the file system resolves it now; ``None`` if absent."""

    @abstractmethod
    def write_state(self, state: dict[str, Any]) -> None:
        """Replace saltpipe-state.json atomically."""

    #: The syndic master's Salt ``cachedir`` as this target reaches it (``file_roots.salt_cachedir`` in the
    #: pipeline config), ``None`` when not configured. See :meth:`clear_file_list_cache`.
    salt_cachedir: Path | None = None

    def clear_file_list_cache(self, saltenv: str) -> bool:
        """Delete the syndic master's cached file list of ``saltenv`` for every fileserver backend
        (``<cachedir>/file_lists/<backend>/<saltenv>.p``) - what ``salt-run fileserver.clear_file_list_cache
        saltenv=<saltenv>`` does on that master - so a file new in the release just switched to is listed at
        once (``cp.list_master``, ``saltutil.sync_*``, top-file includes) instead of after
        ``fileserver_list_cache_time``. Salt rebuilds the list on the next request. ``False`` (nothing done)
        without a ``salt_cachedir``; raises :class:`TargetError` when it cannot."""
        return False

    def close(self) -> None:
        """Release connections (ssh control masters). Safe to call more than once."""
