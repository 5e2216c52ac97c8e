"""What the rollout needs from the sync stage, as a small interface, and its adapter onto :mod:`pipeline.sync`.

The rollout never touches a syndic's file_roots itself. It asks a :class:`ReleaseServing` to

* :meth:`~ReleaseServing.expose` the release as its own saltenv on every syndic of the environment (``base``
  unchanged) and attest it there - idempotent: a release already staged there is only verified;
* :meth:`~ReleaseServing.attest` that every syndic serves it under that saltenv (``saltpipe impact``);
* tell which release ``base`` serves (:meth:`~ReleaseServing.served_base`) - the rollback target;
* :meth:`~ReleaseServing.promote` a release to ``base`` after the last batch (and back, for ``saltpipe rollback``);
* :meth:`~ReleaseServing.retire` the canary saltenv once the rollout is finished, whatever its outcome (the
  rollback and later highstates use ``base``), pruning the syndics back to ``release.keep``;
* hand out the release's ``top.sls`` (:meth:`~ReleaseServing.top_file`) for the planner's top-file check.

:class:`SyncServing` implements it with :func:`pipeline.sync.sync_release` and the attestors of
:mod:`pipeline.sync.attest`. Unit tests use an in-memory implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from pipeline.config import Environment
from pipeline.errors import SyncError


class ReleaseServing(Protocol):
    """The sync stage as the rollout sees it. Every method raises :class:`~pipeline.errors.SyncError` with the
    syndic and the cause when it cannot do its job."""

    def saltenv_for(self, release_id: str) -> str:
        """The saltenv under which ``release_id`` is exposed for canary batches."""

    def expose(self, env: Environment, release_id: str) -> Mapping[str, str]:
        """Make every syndic of ``env`` serve ``release_id`` as :meth:`saltenv_for` it, without changing ``base``,
        and attest it: returns what :meth:`attest` returns (raises unless every syndic serves it)."""

    def attest(self, env: Environment, release_id: str) -> Mapping[str, str]:
        """Every syndic's answer (syndic -> release it serves for the release's saltenv); raises unless all serve it."""

    def served_base(self, env: Environment) -> str | None:
        """The release ``base`` serves on every syndic of ``env`` (``None`` before the first sync); raises if they differ."""

    def promote(self, env: Environment, release_id: str) -> None:
        """Switch ``base`` to ``release_id`` on every syndic of ``env`` (all or none) and attest it."""

    def retire(self, env: Environment, release_id: str) -> None:
        """Remove the canary saltenv of ``release_id`` from every syndic of ``env`` and prune each to the configured
        number of releases (idempotent; ``base`` and the previous release are never pruned)."""

    def top_file(self, release_id: str) -> str | None:
        """The text of the release's ``top.sls`` (``None`` when it has none), for the plan's top-file check."""


class SyncServing:
    """:class:`ReleaseServing` on top of :mod:`pipeline.sync`.

    ``master_configs`` (syndic -> its master config file on this host): those syndics are attested through their
    Salt fileserver in-process; SSH syndics through theirs on their own host; the marker file only where Salt
    cannot be asked (reported as weaker) - :func:`pipeline.sync.attest_select.choose_attestor`.
    """

    def __init__(self, state_dir: Path, keep: int, master_configs: Mapping[str, Path] | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.keep = keep
        self.master_configs = {k: Path(v) for k, v in (master_configs or {}).items()}

    # Imports are local: pipeline.sync pulls in the SSH target and the release store, which the rollout's
    # unit tests and `rollout status` do not need.

    def saltenv_for(self, release_id: str) -> str:
        from pipeline.sync import saltenv_for

        return saltenv_for(release_id)

    def _attestor(self, env: Environment, targets: Sequence[object]):  # type: ignore[no-untyped-def]
        from pipeline.release import ReleaseStore
        from pipeline.sync.attest_select import choose_attestor

        store = ReleaseStore.for_state_dir(self.state_dir)
        return choose_attestor(targets, dict(self.master_configs), "auto", store)  # type: ignore[arg-type]

    def _sync(self, env: Environment, release_id: str, saltenv: str) -> Mapping[str, str]:
        from pipeline.release import ReleaseStore
        from pipeline.sync import SyncContext, open_targets, switch_journal_path, sync_release

        store = ReleaseStore.for_state_dir(self.state_dir)
        release = store.get(release_id)
        with open_targets(env) as targets:
            result = sync_release(
                SyncContext(
                    environment=env.name,
                    release=release,
                    targets=targets,
                    store=store,
                    keep=self.keep,
                    saltenv=saltenv,
                    attestor=self._attestor(env, targets),
                    switch_journal=switch_journal_path(self.state_dir, env.name),
                )
            )
        if not result.ok:
            raise SyncError(
                f"{release_id} could not be {'promoted to base' if saltenv == 'base' else f'exposed as {saltenv}'} "
                f"on {env.name}:\n  " + "\n  ".join(result.failures()),
                hint="fix the syndic named above and run the command again (every syndic kept what it served)",
            )
        if result.attestation is None:  # not reached: _attestor() always gives one
            return self.attest(env, release_id)
        return {s.syndic: str(s.release) for s in result.attestation.served}

    def expose(self, env: Environment, release_id: str) -> Mapping[str, str]:
        # sync_release attests after the switch; attesting again here would only repeat the same questions.
        return self._sync(env, release_id, self.saltenv_for(release_id))

    def attest(self, env: Environment, release_id: str) -> Mapping[str, str]:
        from pipeline.sync import attest, open_targets

        with open_targets(env) as targets:
            attestation = attest(
                self._attestor(env, targets), [s.name for s in env.syndics], release_id, self.saltenv_for(release_id)
            )
        if not attestation.ok:
            raise SyncError(
                f"the syndics of {env.name} do not all serve {release_id} as saltenv {attestation.saltenv} "
                f"({attestation.method}):\n  " + "\n  ".join(attestation.problems()),
                hint=f"run `saltpipe sync {env.name} --release {release_id}` and check the syndic named above",
            )
        return {s.syndic: str(s.release) for s in attestation.served}

    def served_base(self, env: Environment) -> str | None:
        from pipeline.sync import environment_status, open_targets

        with open_targets(env) as targets:
            status = environment_status(targets)
        errors = [f"{s.syndic}: {s.error}" for s in status if s.error]
        if errors:
            raise SyncError(f"cannot read what the syndics of {env.name} serve: " + "; ".join(errors))
        served = {s.served for s in status}
        if len(served) != 1:
            listing = ", ".join(f"{s.syndic}: {s.served or 'nothing'}" for s in status)
            raise SyncError(
                f"the syndics of {env.name} serve different releases as base ({listing})",
                hint=f"sync one release to all of them first (`saltpipe sync {env.name} --release ID`)",
            )
        return served.pop()

    def promote(self, env: Environment, release_id: str) -> None:
        self._sync(env, release_id, "base")

    def retire(self, env: Environment, release_id: str) -> None:
        from pipeline.sync import open_targets, unexpose_release

        with open_targets(env) as targets:
            errors = unexpose_release(targets, self.saltenv_for(release_id), keep=self.keep)
        if errors:
            raise SyncError(
                f"the canary saltenv {self.saltenv_for(release_id)} could not be removed from every syndic of "
                f"{env.name}:\n  " + "\n  ".join(str(e) for e in errors),
                hint=f"fix the syndic named above, then `saltpipe sync {env.name} --remove-canary {release_id}` "
                "(the link serves a verified release; nothing else depends on it)",
            )

    def top_file(self, release_id: str) -> str | None:
        from pipeline.release import ReleaseStore

        path = ReleaseStore.for_state_dir(self.state_dir).get(release_id).tree / "top.sls"
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
