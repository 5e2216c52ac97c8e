"""Phase 1 of a sync on one syndic: stage a release beside what it serves, verified, without switching anything.

``releases/.staging-<id>/`` gets hard links to every file the served release holds unchanged (same path, content
and mode; so a one-file change copies one file), the rest is copied from the local release store; the staged
tree is verified against the manifest (size, mode, sha256 of every file; no extra or missing file) and renamed
to ``releases/<id>/``. A release that is already there is verified instead of copied. :func:`stage_on` never
raises for the syndic's failures: they are in its :class:`StageOutcome` (see :mod:`pipeline.sync.engine`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from pipeline.errors import SaltpipeError, UsageError
from pipeline.release.manifest import ManifestEntry, ManifestError
from pipeline.release.store import Release, ReleaseStore, ReleaseStoreError
from pipeline.release.tree import TreeScan, compare, describe_mismatches, sha256_file
from pipeline.sync.layout import staging_name
from pipeline.sync.target import FileRootsTarget, TargetError, TargetSnapshot

#: Free space kept in reserve on a syndic beyond the bytes a sync copies.
SPACE_MARGIN = 1 << 20


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
