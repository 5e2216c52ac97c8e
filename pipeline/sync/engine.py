"""The sync stage: put a release on every syndic of an environment, verified, then switch them together.

:func:`sync_release` is the whole stage, a function of a frozen :class:`SyncContext` returning a
:class:`SyncResult` (data: per syndic what was staged, switched, pruned, attested, or why not). Contract:

1. **Stage** on every syndic in parallel: ``releases/.staging-<id>/`` gets hard links to every file the
   served release holds unchanged (same path, content and mode; so a one-file change copies one file), the
   rest is copied from the local release store, then the staged tree is verified against the manifest (size,
   mode, sha256 of every file; no extra or missing file), and renamed to ``releases/<id>/``. A release that is
   already there is verified instead of copied.
2. **Switch** only if every syndic staged: the link (``base``, or ``envs/<saltenv>`` for a canary) is replaced
   by an atomic rename on each syndic. If a switch fails on one syndic, the ones already switched are switched
   back, so the syndics never stay split between two releases because of saltpipe.
3. **Prune** releases beyond ``keep`` (the served one included; a release any link serves is never removed),
   and leftover staging directories.
4. **Attest** (if an attestor is given): every syndic must report the release through its marker.

A failure in step 1 on any syndic (unreachable, disk full, manifest mismatch, a copy killed mid-way) leaves
every syndic serving what it served before; re-running the same sync completes it (leftovers are removed,
already staged syndics are only verified). The stage never takes the environment lock: the caller does (the CLI
for ``saltpipe sync``, the rollout for its whole run), see :mod:`pipeline.lock`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from pipeline.errors import SaltpipeError, UsageError
from pipeline.release.manifest import Manifest, ManifestEntry, ManifestError
from pipeline.release.store import Release, ReleaseStore, ReleaseStoreError
from pipeline.release.tree import TreeScan, compare, describe_mismatches, sha256_file
from pipeline.sync.attest import Attestation, Attestor, attest
from pipeline.sync.layout import BASE_LINK, ENVS_DIR, HISTORY_KEEP, env_link, staging_name
from pipeline.sync.switchlog import SwitchJournal
from pipeline.sync.target import FileRootsTarget, TargetError, TargetSnapshot

T = TypeVar("T")
R = TypeVar("R")

#: Free space kept in reserve on a syndic beyond the bytes a sync copies.
SPACE_MARGIN = 1 << 20


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
class StageOutcome:
    """Phase 1 on one syndic."""

    syndic: str
    ok: bool
    action: str  # "staged", "verified" (already there) or "failed"
    served_before: str | None = None
    linked: int = 0
    copied: int = 0
    bytes_copied: int = 0
    wire_bytes: int | None = None
    seconds: float = 0.0
    error: TargetError | None = None
    notes: tuple[str, ...] = ()


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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
                _record_switch(target, link, outcome)
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


def stage_on(target: FileRootsTarget, release: Release, store: ReleaseStore) -> StageOutcome:
    """Phase 1 on one syndic; never raises for the syndic's failures (they are in the outcome)."""
    started = time.monotonic()
    snap: TargetSnapshot | None = None
    try:
        snap = target.snapshot()
        outcome = _stage(target, snap, release, store)
    except TargetError as exc:
        return StageOutcome(target.name, False, "failed", snap.base if snap else None, seconds=time.monotonic() - started,
                            error=exc)
    return dataclasses.replace(outcome, seconds=time.monotonic() - started)


def _stage(target: FileRootsTarget, snap: TargetSnapshot, release: Release, store: ReleaseStore) -> StageOutcome:
    expected = release.manifest.expected_files()
    notes: list[str] = []
    if release.id in snap.releases:
        problems = compare(expected, target.scan(release.id))
        if not problems:
            return StageOutcome(target.name, True, "verified", snap.base)
        if release.id in snap.referenced():
            raise TargetError(
                target.name,
                f"verify {release.id}",
                f"the release served here does not match its manifest: {describe_mismatches(problems)}",
                hint="the live tree was changed on the syndic; sync another release first, then re-run this one "
                "(it is then staged afresh)",
            )
        notes.append(f"{release.id} was present but damaged ({describe_mismatches(problems, 2)}); staged again")
        target.discard(release.id)

    donor, keep, drop, to_copy = _plan(target, snap, release, store, notes)
    need = sum(expected[p].size for p in to_copy) + SPACE_MARGIN
    if snap.free_bytes is not None and snap.free_bytes < need:
        raise TargetError(
            target.name,
            "check free space",
            f"{need - SPACE_MARGIN} bytes to copy, only {snap.free_bytes} bytes free",
            hint="free space on the syndic's file system, then re-run",
        )
    target.prepare_staging(release.id, donor, keep, drop)
    stats = target.copy_files(release.id, release.tree, to_copy)
    copied, bytes_copied, wire = stats.files, stats.bytes, stats.wire_bytes

    staging = staging_name(release.id)
    problems = compare(expected, target.scan(staging))
    if problems:
        # A linked file may differ from its manifest entry if someone edited an older release in place (hard
        # links share the change). Copy the mismatching files afresh once; only then call the stage failed, so a
        # re-run cannot keep failing on the same damaged donor.
        repair = sorted(p.path for p in problems if p.path in expected)
        extra = [p for p in problems if p.path not in expected]
        if repair and not extra:
            stats = target.copy_files(release.id, release.tree, repair)
            copied += stats.files
            bytes_copied += stats.bytes
            wire = None if wire is None or stats.wire_bytes is None else wire + stats.wire_bytes
            notes.append(f"copied again after a mismatch: {', '.join(repair[:5])}")
            problems = compare(expected, target.scan(staging))
    if problems:
        damaged_store = [p.path for p in problems if p.path in expected and _store_damaged(release, expected[p.path])]
        hint = "re-run the sync: the syndic keeps serving its previous release, and staging starts afresh"
        if damaged_store:
            hint = (
                f"the local release store is damaged too ({', '.join(damaged_store[:3])}); remove {release.path} "
                "and rebuild it with `saltpipe release build`, then re-run"
            )
        raise TargetError(
            target.name,
            f"verify staged {release.id}",
            f"does not match the manifest: {describe_mismatches(problems)}",
            hint=hint,
        )
    target.commit_staging(release.id)
    return StageOutcome(target.name, True, "staged", snap.base, len(keep), copied, bytes_copied, wire, notes=tuple(notes))


def _store_damaged(release: Release, entry: ManifestEntry) -> bool:
    try:
        return sha256_file(release.tree / entry.path) != entry.sha256
    except OSError:
        return True


def _plan(
    target: FileRootsTarget, snap: TargetSnapshot, release: Release, store: ReleaseStore, notes: list[str]
) -> tuple[str | None, list[str], list[str], list[str]]:
    """Which release on the syndic to hard-link from, and which files to keep, drop and copy.

    The donor is the served release, else the newest other release there. Its file list comes from the local
    store's manifest, or from a scan on the syndic when the store does not know it (built on another machine).
    A file is kept (linked) when the donor has it at the same path with the same content and mode.
    """
    candidates = [snap.base] if snap.base in snap.releases else []
    candidates += [r for r in reversed(snap.releases) if r not in candidates and r != release.id]
    expected = release.manifest.expected_files()
    if not candidates:
        return None, [], [], sorted(expected)
    donor = candidates[0]
    files = _donor_files(target, donor, store, notes)
    keep, copy = [], []
    for path, entry in expected.items():
        if files.get(path) == (entry.sha256, entry.mode):
            keep.append(path)
        else:
            copy.append(path)
    drop = sorted(set(files) - set(keep))
    return donor, sorted(keep), drop, sorted(copy)


def _donor_files(target: FileRootsTarget, donor: str, store: ReleaseStore, notes: list[str]) -> dict[str, tuple[str, int]]:
    """The donor release's files (sha256, mode): from the local store's manifest, else read on the syndic.

    A damaged store entry is safe to work around - hard links are only kept for files whose hash the syndic's
    own scan confirms, and the staged tree is verified against the new manifest - but it is said in the notes,
    because the store is supposed to be immutable and someone has to look at it."""
    if store.exists(donor):
        try:
            manifest = store.get(donor).manifest
            return {p: (e.sha256, e.mode) for p, e in manifest.expected_files().items()}
        except (ManifestError, ReleaseStoreError, UsageError, OSError) as exc:
            what = exc.message if isinstance(exc, SaltpipeError) else str(exc)
            notes.append(
                f"the local release store's entry of {donor} is damaged ({what}): its files were read on the syndic "
                f"instead; see `saltpipe release list` and remove or rebuild {store.path_of(donor)}"
            )
    scan: TreeScan = target.scan(donor)
    return {p: (f.sha256, f.mode) for p, f in scan.files.items()}


# ----------------------------------------------------------------------------------------------------------------
# Switch, bookkeeping, prune


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


def _record_switch(target: FileRootsTarget, link: str, outcome: SwitchOutcome) -> None:
    """Update saltpipe-state.json after a switch: base/previous (or the exposed saltenv) and history."""
    snap = target.snapshot()
    state = _state(snap, target.name)
    now = _now()
    if link == BASE_LINK:
        current = state.get("base") or {}
        if current.get("release") != outcome.release:
            if current.get("release"):
                state["previous"] = current
            elif outcome.before and outcome.before != outcome.release:
                state["previous"] = {"release": outcome.before, "since": None}
            state["base"] = {"release": outcome.release, "since": now}
    else:
        state.setdefault("exposed", {})[link.split("/", 1)[1]] = {"release": outcome.release, "since": now}
    # A counter, not the clock, orders releases for pruning: two syncs can happen within the same second.
    state["seq"] = int(state.get("seq") or 0) + 1
    state["releases"].setdefault(outcome.release, {}).update({"last_used": now, "seq": state["seq"]})
    _history(state, "switch", outcome.release, link, now)
    target.write_state(state)


def _state(snap: TargetSnapshot, syndic: str) -> dict[str, Any]:
    state = dict(snap.state) if snap.state.get("format") == 1 else {"format": 1}
    state["syndic"] = syndic
    state.setdefault("history", [])
    state["releases"] = dict(state.get("releases") or {})
    return state


def _history(state: dict[str, Any], action: str, release: str, link: str, at: str) -> None:
    state["history"] = (list(state.get("history") or []) + [{"at": at, "action": action, "release": release,
                                                             "link": link}])[-HISTORY_KEEP:]


def prune(target: FileRootsTarget, keep: int) -> tuple[str, ...]:
    """Remove staging leftovers and releases beyond ``keep``; returns the releases removed.

    Kept: every release a link serves, then the previous one (for a rollback), then the most recently switched
    to (by saltpipe-state.json; releases it does not know count as oldest) until ``keep`` are kept.
    """
    snap = target.snapshot()
    for leftover in snap.staging:
        target.discard(leftover)
    state = _state(snap, target.name)
    used = {rid: int((info or {}).get("seq") or 0) for rid, info in state["releases"].items()}
    previous = (state.get("previous") or {}).get("release")
    kept = set(snap.referenced())
    ranked = sorted(snap.releases, key=lambda r: (r == previous, used.get(r, 0)), reverse=True)
    for rid in ranked:
        if len(kept) >= keep:
            break
        kept.add(rid)
    removed = tuple(r for r in snap.releases if r not in kept)
    for rid in removed:
        target.discard(rid)
    if removed:
        state["releases"] = {k: v for k, v in state["releases"].items() if k not in removed}
        target.write_state(state)
    return removed


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
            snap = target.snapshot()
            state = _state(snap, target.name)
            state.get("exposed", {}).pop(saltenv, None)
            _history(state, "unexpose", saltenv, link, _now())
            target.write_state(state)
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
    from pipeline.errors import SyncError

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


def manifest_of(store: ReleaseStore, release_id: str) -> Manifest:
    """The manifest of a stored release (for callers that only hold an id)."""
    return store.get(release_id).manifest
