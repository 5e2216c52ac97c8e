"""Which attestor asks which syndic: the one place where the evidence of a sync is chosen.

``saltpipe sync --attest MODE`` and every rollout (:class:`pipeline.rollout.serving.SyncServing`, always
``auto``) call :func:`choose_attestor`; the attestors themselves live in :mod:`pipeline.sync.attest` (local Salt
fileserver, marker file) and :mod:`pipeline.sync.salt_remote` (an SSH syndic's own Salt fileserver). Kept apart
from both so that each of them depends only on the evidence model, and this module on them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import UsageError
from pipeline.sync.attest import Attestor, FileRootsAttestor, RoutedAttestor, SaltMasterAttestor, WeakerMarkerAttestor
from pipeline.sync.salt_remote import SshSaltAttestor
from pipeline.sync.target import FileRootsTarget

if TYPE_CHECKING:
    from pipeline.release.store import ReleaseStore

#: The values of ``saltpipe sync --attest``.
MODES = ("auto", "salt", "file_roots", "none")


def choose_attestor(
    targets: Sequence[FileRootsTarget],
    master_configs: dict[str, Path],
    mode: str,
    store: ReleaseStore,
) -> Attestor | None:
    """The strongest attestation each syndic allows (``mode`` one of :data:`MODES`):

    * a syndic whose master config is on this host: its Salt fileserver in-process (:class:`SaltMasterAttestor`);
    * an SSH syndic: its Salt fileserver on its own host, over the SSH session
      (:class:`~pipeline.sync.salt_remote.SshSaltAttestor`), its file list compared with the release's manifest
      in ``store``;
    * a local syndic without a master config: its marker file, reported as weaker (``salt``: a usage error).

    Under ``auto`` an SSH syndic whose host cannot run Salt falls back to its marker, reported as weaker; under
    ``salt`` that is an attestation failure. ``file_roots`` reads every marker (weakest, never mixed); ``none``
    gives ``None`` (no attestation).
    """
    if mode == "none":
        return None
    if mode == "file_roots":
        return FileRootsAttestor(targets)
    local = {t.name: master_configs[t.name] for t in targets if t.name in master_configs}
    ssh = {t.name: t for t in targets if t.name not in local and hasattr(t, "read_through_salt")}
    rest = [t for t in targets if t.name not in local and t.name not in ssh]
    if rest and mode == "salt":
        raise UsageError(
            f"--attest salt needs the master config of every local syndic; missing: {', '.join(t.name for t in rest)}",
            hint="set environments.<env>.syndics[].master_config in the pipeline config, or --syndic-config SYNDIC=PATH",
        )
    routes: dict[str, Attestor] = {}
    if local:
        shared = SaltMasterAttestor(local)
        routes.update(dict.fromkeys(local, shared))
    if ssh:
        remote = SshSaltAttestor(ssh, expected_files(store), fallback=mode == "auto")
        routes.update(dict.fromkeys(ssh, remote))
    if rest:
        weak = WeakerMarkerAttestor(rest, "no master config of this syndic on this host")
        routes.update((t.name, weak) for t in rest)
    return RoutedAttestor(routes)


def expected_files(store: ReleaseStore) -> Callable[[str], "set[str] | None"]:
    """A release's file list as its manifest in ``store`` says; ``None`` when it is not stored here."""

    def files(release_id: str) -> set[str] | None:
        if not store.exists(release_id):
            return None  # built elsewhere: only its marker can be compared
        try:
            return set(store.get(release_id).manifest.expected_files())
        except UsageError:
            return None

    return files
