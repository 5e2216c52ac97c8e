"""The sync stage: put a release on every syndic of an environment, verified, then switch them together.

:func:`sync_release` is the whole stage, a function of a frozen :class:`SyncContext` returning a
:class:`SyncResult` (data: per syndic what was staged, switched, pruned, attested, or why not). Contract:

1. **Stage** on every syndic in parallel: ``releases/.staging-<id>/`` gets hard links to every file the
   served release holds unchanged (same path, content and mode; so a one-file change copies one file), the
   rest is copied from the local release store, then the staged tree is verified against the manifest (size,
   mode, sha256 of every file; no extra or missing file), and renamed to ``releases/<id>/``. A release that is
   already there is verified instead of copied (:mod:`pipeline.sync.stage`).
2. **Switch** only if every syndic staged: the link (``base``, or ``envs/<saltenv>`` for a canary) is replaced
   by an atomic rename on each syndic. If a switch fails on one syndic, the ones already switched are switched
   back, so the syndics never stay split between two releases because of saltpipe.
3. **Record and prune** (:mod:`pipeline.sync.syndic_state`): each syndic's saltpipe-state.json, then releases
   beyond ``keep`` (the served one included; a release any link serves is never removed) and leftover staging
   directories are removed.
4. **Attest** (if an attestor is given): every syndic must report the release through its marker.

A failure in step 1 on any syndic (unreachable, disk full, manifest mismatch, a copy killed mid-way) leaves
every syndic serving what it served before; re-running the same sync completes it (leftovers are removed,
already staged syndics are only verified). The stage never takes the environment lock: the caller does (the CLI
for ``saltpipe sync``, the rollout for its whole run), see :mod:`pipeline.lock`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pipeline.errors import SyncError
from pipeline.release.store import Release, ReleaseStore
from pipeline.sync.attest import Attestation, Attestor, attest
from pipeline.sync.layout import BASE_LINK, ENVS_DIR, env_link
from pipeline.sync.stage import StageOutcome, stage_on
from pipeline.sync.switchlog import SwitchJournal
from pipeline.sync.syndic_state import prune, record_switch, record_unexpose
from pipeline.sync.target import FileRootsTarget, TargetError

T = TypeVar("T")
R = TypeVar("R")

@dataclass(frozen=True)
class SyncContext:
    """Inputs of one sync: which release, to which syndics (as targets), which link to switch, how many to keep.

    ``saltenv`` is ``"base"`` for a normal sync or promotion, or a canary saltenv
    (:func:`pipeline.sync.layout.saltenv_for`) to expose a release without touching ``base``.
    """

    environment: str
    release: Release
    targets: tuple[FileRootsTarget, ...]
    store: ReleaseStore
    keep: int = 5
    saltenv: str = "base"
    attestor: Attestor | None = None
    #: Where the switch journal goes (:func:`pipeline.sync.switchlog.switch_journal_path`): intent before the
    #: first switch, one record per switched syndic, removed when done - so a sync killed mid-switch is finished
    #: or undone by the next one. ``None``: no journal (unit tests of the engine alone).
    switch_journal: Path | None = None


@dataclass(frozen=True)
class SwitchOutcome:
    """Phase 2 on one syndic: ``link`` now serves ``release`` (``ok``), or the error and whether it was undone."""

    syndic: str
    ok: bool
    link: str
    release: str
    before: str | None
    error: TargetError | None = None
    reverted: bool = False


@dataclass(frozen=True)
class SyncResult:
    """Everything one sync did. ``ok`` when every syndic switched (and, if asked, attested the release)."""

    environment: str
    release: str
    saltenv: str
    staged: tuple[StageOutcome, ...]
    switched: tuple[SwitchOutcome, ...] = ()
    pruned: dict[str, tuple[str, ...]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    attestation: Attestation | None = None
    seconds: float = 0.0

    @property
    def staged_everywhere(self) -> bool:
        return bool(self.staged) and all(s.ok for s in self.staged)

    @property
    def switched_everywhere(self) -> bool:
        return bool(self.switched) and all(s.ok for s in self.switched)

    @property
    def ok(self) -> bool:
        return self.switched_everywhere and (self.attestation is None or self.attestation.ok)

    def failures(self) -> list[str]:
        """One line per problem, each naming the syndic and the cause."""
        out = [str(s.error) for s in self.staged if s.error]
        out += [str(s.error) for s in self.switched if s.error]
        if self.attestation is not None and not self.attestation.ok:
            out += self.attestation.problems()
        return out


def _parallel(items: Sequence[T], fn: Callable[[T], R]) -> list[R]:
    """``fn`` over ``items`` in threads (targets spend their time in I/O, ssh and rsync), results in order."""
    if len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(fn, items))


# ----------------------------------------------------------------------------------------------------------------
# The stage


def sync_release(ctx: SyncContext) -> SyncResult:
    """Stage everywhere, then switch everywhere, prune, attest. See the module docstring for the contract."""
    started = time.monotonic()
    link = env_link(ctx.saltenv)
    staged = tuple(_parallel(ctx.targets, lambda t: stage_on(t, ctx.release, ctx.store)))
    if not all(s.ok for s in staged):
        return SyncResult(ctx.environment, ctx.release.id, ctx.saltenv, staged, seconds=time.monotonic() - started)

    before = {s.syndic: s.served_before for s in staged}
    journal = SwitchJournal(ctx.switch_journal) if ctx.switch_journal is not None else None
    if journal is not None:
        journal.begin(ctx.environment, ctx.release.id, link, ctx.saltenv,
                      before if link == BASE_LINK else dict.fromkeys(before))
    switched = switch_all(ctx.targets, ctx.release.id, link, before, journal=journal)
    warnings: list[str] = []
    pruned: dict[str, tuple[str, ...]] = {}
    if all(s.ok for s in switched):
        for target, outcome in zip(ctx.targets, switched):
            try:
                record_switch(target, link, outcome.release, outcome.before)
                pruned[target.name] = prune(target, ctx.keep)
            except TargetError as exc:
                # The switch happened; bookkeeping and pruning are retried by the next sync.
                warnings.append(str(exc))
            try:
                target.clear_file_list_cache(ctx.saltenv)
            except TargetError as exc:
                warnings.append(
                    f"{exc} (files new in {ctx.release.id} may be missing from {target.name}'s file list until "
                    "fileserver_list_cache_time passes)"
                )
    undo_failed = any(s.error is not None and s.error.step == f"switch {link} back" for s in switched)
    if journal is not None and not undo_failed:
        journal.finish()  # one release everywhere again (switched, or switched back); else the next run recovers
    attestation = None
    if ctx.attestor is not None and all(s.ok for s in switched):
        attestation = attest(ctx.attestor, [t.name for t in ctx.targets], ctx.release.id, ctx.saltenv)
    return SyncResult(
        ctx.environment,
        ctx.release.id,
        ctx.saltenv,
        staged,
        switched,
        pruned,
        tuple(warnings),
        attestation,
        time.monotonic() - started,
    )




def switch_all(
    targets: Sequence[FileRootsTarget], release_id: str, link: str, before: dict[str, str | None],
    journal: SwitchJournal | None = None,
) -> tuple[SwitchOutcome, ...]:
    """Point ``link`` at ``release_id`` on every target; if any fails, switch the others back. ``journal`` gets
    a record per switched target (the caller wrote the intent)."""
    first = targets[0].name if targets else None

    def one(target: FileRootsTarget) -> SwitchOutcome:
        try:
            if journal is not None:
                journal.pause_point(first=target.name == first)
            target.set_link(link, release_id)
        except TargetError as exc:
            return SwitchOutcome(target.name, False, link, release_id, before.get(target.name), exc)
        if journal is not None:
            journal.switched(target.name)
        return SwitchOutcome(target.name, True, link, release_id, before.get(target.name))

    # For a canary link the "before" is that link's own target, not base's.
    if link != BASE_LINK:
        before = {t.name: None for t in targets}
    outcomes = _parallel(list(targets), one)
    if all(o.ok for o in outcomes):
        return tuple(outcomes)

    def undo(pair: tuple[FileRootsTarget, SwitchOutcome]) -> SwitchOutcome:
        target, outcome = pair
        if not outcome.ok:
            return outcome
        try:
            if outcome.before:
                target.set_link(link, outcome.before)
            else:
                target.remove_link(link)
        except TargetError as exc:
            return SwitchOutcome(target.name, False, link, release_id, outcome.before,
                                 TargetError(target.name, f"switch {link} back", exc.cause), reverted=False)
        return SwitchOutcome(target.name, False, link, release_id, outcome.before,
                             TargetError(target.name, f"switch {link}", "switched back because another syndic failed"),
                             reverted=True)

    return tuple(_parallel(list(zip(targets, outcomes)), undo))


# ----------------------------------------------------------------------------------------------------------------
# Canary links, rollback, status


def unexpose_release(
    targets: Sequence[FileRootsTarget], saltenv: str, keep: int | None = None
) -> list[TargetError]:
    """Remove the canary saltenv link on every syndic; errors per syndic. Idempotent (no link: nothing to do).

    The release stays on the syndic while another link serves it (``base`` after a promotion). With ``keep``,
    the syndic is then pruned to ``keep`` releases, so a release only its canary link kept is removed once it is
    beyond ``keep`` (what the rollout does when it finishes); without, it stays until the next sync prunes.
    """
    link = env_link(saltenv)
    if link == BASE_LINK:
        raise ValueError("base is never removed")

    def one(target: FileRootsTarget) -> TargetError | None:
        try:
            target.remove_link(link)
            record_unexpose(target, saltenv, link)
            if keep is not None:
                prune(target, keep)
        except TargetError as exc:
            return exc
        return None

    return [e for e in _parallel(list(targets), one) if e is not None]


def previous_release(targets: Sequence[FileRootsTarget]) -> str:
    """The release every syndic served before its current one: what a rollback switches back to.

    Raises :class:`~pipeline.errors.SyncError` when a syndic cannot be read or the syndics disagree.
    """
    answers: dict[str, str | None] = {}
    for target in targets:
        snap = target.snapshot()
        answers[target.name] = (snap.state.get("previous") or {}).get("release")
    ids = set(answers.values())
    if len(ids) != 1 or None in ids:
        listing = ", ".join(f"{k}: {v or 'none'}" for k, v in answers.items())
        raise SyncError(
            f"the syndics do not agree on a previous release ({listing})",
            hint="roll back to an explicit release with `saltpipe sync ENV --release <id>`",
        )
    return ids.pop()  # type: ignore[return-value]


@dataclass(frozen=True)
class SyndicStatus:
    """What one syndic serves and holds, from its directory and its saltpipe-state.json."""

    syndic: str
    where: str
    served: str | None = None
    since: str | None = None
    previous: str | None = None
    exposed: dict[str, str | None] = field(default_factory=dict)
    releases: tuple[str, ...] = ()
    staging: tuple[str, ...] = ()
    error: str | None = None
    note: str | None = None


def environment_status(targets: Sequence[FileRootsTarget]) -> tuple[SyndicStatus, ...]:
    """Per syndic: the release ``base`` serves (from the symlink itself), since when, the previous one."""

    def one(target: FileRootsTarget) -> SyndicStatus:
        try:
            snap = target.snapshot()
        except TargetError as exc:
            return SyndicStatus(target.name, target.describe(), error=exc.cause)
        base_state = snap.state.get("base") or {}
        note = None
        since = base_state.get("since")
        if base_state.get("release") != snap.base:
            # The symlink is the truth; the state file lags if a sync died between switch and bookkeeping.
            note = f"state file says {base_state.get('release') or 'nothing'}; the base link is authoritative"
            since = None
        exposed = {k.split("/", 1)[1]: v for k, v in snap.links.items() if k.startswith(ENVS_DIR + "/")}
        return SyndicStatus(
            target.name,
            target.describe(),
            served=snap.base,
            since=since,
            previous=(snap.state.get("previous") or {}).get("release"),
            exposed=exposed,
            releases=snap.releases,
            staging=snap.staging,
            note=note,
        )

    return tuple(_parallel(list(targets), one))
