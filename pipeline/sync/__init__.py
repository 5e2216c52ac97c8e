"""Sync: put a release on every syndic of an environment, verified, and switch them together (issue 5).

* :mod:`pipeline.sync.layout` - the on-disk layout of a syndic's directory (releases/, base, envs/);
* :mod:`pipeline.sync.target` - the file_roots target interface; :mod:`~pipeline.sync.local` and
  :mod:`~pipeline.sync.ssh` implement it;
* :mod:`pipeline.sync.engine` - the stage: :func:`sync_release` (stage all, switch all, prune, attest),
  :func:`unexpose_release`, :func:`previous_release`, :func:`environment_status`; its phases
  :mod:`pipeline.sync.stage` (stage one syndic, verified) and :mod:`pipeline.sync.syndic_state` (each syndic's
  saltpipe-state.json, :func:`prune`); :mod:`pipeline.sync.switchlog` - the switch journal and its recovery;
* :mod:`pipeline.sync.attest` - asking each syndic what it serves (file_roots, a master's fileserver, a minion);
  :mod:`pipeline.sync.salt_remote` - an SSH syndic's own fileserver; :mod:`pipeline.sync.attest_select` -
  :func:`choose_attestor`, which of them asks which syndic.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from pipeline.config import Environment, LocalFileRoots, SshFileRoots, Syndic
from pipeline.sync.attest import (
    Attestation,
    Attestor,
    FileRootsAttestor,
    SaltCallAttestor,
    SaltMasterAttestor,
    ServedRelease,
    attest,
)
from pipeline.sync.attest_select import choose_attestor
from pipeline.sync.engine import (
    SwitchOutcome,
    SyncContext,
    SyncResult,
    SyndicStatus,
    environment_status,
    previous_release,
    sync_release,
    unexpose_release,
)
from pipeline.sync.layout import saltenv_for
from pipeline.sync.local import LocalTarget
from pipeline.sync.ssh import SshTarget
from pipeline.sync.stage import StageOutcome
from pipeline.sync.switchlog import SwitchJournal, SwitchRecovery, recover_switch, switch_journal_path
from pipeline.sync.syndic_state import prune
from pipeline.sync.target import FileRootsTarget, TargetError, TargetSnapshot


def target_for(syndic: Syndic) -> FileRootsTarget:
    """The file_roots target for one syndic of pipeline.yaml."""
    roots = syndic.file_roots
    if isinstance(roots, LocalFileRoots):
        return LocalTarget(syndic.name, roots.path, salt_cachedir=roots.salt_cachedir)
    if isinstance(roots, SshFileRoots):
        # Every setting of the config model is a keyword of the target (``path`` is its ``root``): a field added
        # to SshFileRoots reaches the target, or fails here with a TypeError in the unit tests.
        return SshTarget(syndic.name, root=roots.path, **roots.model_dump(exclude={"type", "path"}))
    raise TypeError(f"unknown file_roots type {type(roots).__name__}")


def targets_for(env: Environment) -> tuple[FileRootsTarget, ...]:
    """One target per syndic of ``env``, in config order. Call :func:`close_targets` when done."""
    return tuple(target_for(s) for s in env.syndics)


def close_targets(targets: Sequence[FileRootsTarget]) -> None:
    for target in targets:
        target.close()


@contextmanager
def open_targets(env: Environment) -> Iterator[tuple[FileRootsTarget, ...]]:
    """:func:`targets_for` ``env``, closed (their SSH connections) however the block ends."""
    targets = targets_for(env)
    try:
        yield targets
    finally:
        close_targets(targets)


__all__ = [
    "Attestation",
    "Attestor",
    "FileRootsAttestor",
    "FileRootsTarget",
    "LocalTarget",
    "SaltCallAttestor",
    "SaltMasterAttestor",
    "ServedRelease",
    "SshTarget",
    "StageOutcome",
    "SwitchJournal",
    "SwitchOutcome",
    "SwitchRecovery",
    "SyncContext",
    "SyncResult",
    "SyndicStatus",
    "TargetError",
    "TargetSnapshot",
    "attest",
    "choose_attestor",
    "close_targets",
    "environment_status",
    "open_targets",
    "previous_release",
    "prune",
    "recover_switch",
    "saltenv_for",
    "switch_journal_path",
    "sync_release",
    "target_for",
    "targets_for",
    "unexpose_release",
]
