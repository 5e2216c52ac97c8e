"""Formatters for sync results and environment status (text lines and JSON-ready dicts); no logic lives here."""

from __future__ import annotations

from typing import Any

from pipeline.jsonfile import field_json
from pipeline.lock import LockInfo
from pipeline.release.store import Release, StoreEntry
from pipeline.sync.attest import Attestation
from pipeline.sync.engine import SyncResult, SyndicStatus
from pipeline.sync.target import TargetError


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def release_lines(release: Release, created: bool | None = None) -> list[str]:
    state = "" if created is None else (" (new)" if created else " (same content as before: reused)")
    return [
        f"release {release.id}{state}",
        f"  commit   {release.commit or 'unknown'}",
        f"  files    {len(release.manifest.entries)} ({_size(release.manifest.total_bytes)})",
        f"  digest   sha256:{release.manifest.digest}",
        f"  stored   {release.path}",
    ]


def release_json(release: Release, created: bool | None = None) -> dict[str, Any]:
    return {
        "release": release.id,
        "commit": release.commit,
        "built_at": release.built_at,
        "files": len(release.manifest.entries),
        "bytes": release.manifest.total_bytes,
        "manifest_sha256": release.manifest.digest,
        "path": str(release.path),
        **({} if created is None else {"created": created}),
    }


def store_entry_json(entry: StoreEntry) -> dict[str, Any]:
    """A store entry for ``release list --format json``: the release's fields and ``damaged`` (the problem or None)."""
    base = release_json(entry.release) if entry.release is not None else {"release": entry.id, "path": str(entry.path)}
    return {**base, "damaged": entry.problem}


def sync_lines(result: SyncResult) -> list[str]:
    """Human lines: one per syndic for staging, then the switch, pruning and attestation."""
    where = "base" if result.saltenv == "base" else f"saltenv {result.saltenv} (canary; base unchanged)"
    lines = [f"sync {result.release} -> {result.environment} [{where}]"]
    width = max((len(s.syndic) for s in result.staged), default=0)
    for s in result.staged:
        if s.ok:
            detail = (
                f"linked {s.linked}, copied {s.copied} ({_size(s.bytes_copied)}"
                + (f", {_size(s.wire_bytes)} on the wire" if s.wire_bytes is not None else "")
                + ")"
                if s.action == "staged"
                else "already there, verified"
            )
            lines.append(f"  {s.syndic:<{width}}  {s.action:<8}  {detail}  {s.seconds:.2f}s")
            lines += [f"  {'':<{width}}  note: {n}" for n in s.notes]
        else:
            assert s.error is not None
            lines.append(f"  {s.syndic:<{width}}  FAILED    {s.error.step}: {s.error.cause}")
            if s.error.hint:
                lines.append(f"  {'':<{width}}  hint: {s.error.hint}")
    if not result.staged_everywhere:
        lines.append("  switched: none (every syndic keeps serving what it served)")
    elif result.switched:
        done = sum(o.ok for o in result.switched)
        link = result.switched[0].link
        lines.append(f"  switched saltenv {result.saltenv} ({link}) on {done}/{len(result.switched)} syndics")
        for o in result.switched:
            if not o.ok and o.error:
                lines.append(f"  {o.syndic:<{width}}  FAILED    {o.error.step}: {o.error.cause}")
    for syndic, removed in sorted(result.pruned.items()):
        if removed:
            lines.append(f"  pruned on {syndic}: {', '.join(removed)}")
    lines += [f"  warning: {w}" for w in result.warnings]
    if result.attestation is not None:
        lines += attestation_lines(result.attestation)
    lines.append(f"  {'ok' if result.ok else 'FAILED'} in {result.seconds:.2f}s")
    return lines


def attestation_lines(att: Attestation) -> list[str]:
    weaker = [f"  WEAKER evidence: {line}" for line in att.weaker]
    if att.ok:
        return [f"  attested ({att.method}): every syndic serves {att.expected} for {att.saltenv}", *weaker]
    return [f"  attestation ({att.method}) FAILED:"] + [f"    {p}" for p in att.problems()] + weaker


def sync_json(result: SyncResult) -> dict[str, Any]:
    """The fields of ``result`` (staged, switched and attestation as objects of their own fields) and its verdict."""
    return {
        **field_json(
            result,
            seconds=round(result.seconds, 3),
            staged=[
                field_json(s, seconds=round(s.seconds, 3), error=_message(s.error), notes=list(s.notes))
                for s in result.staged
            ],
            switched=[field_json(o, error=_message(o.error)) for o in result.switched],
            pruned={k: list(v) for k, v in result.pruned.items()},
            warnings=list(result.warnings),
            attestation=None if result.attestation is None else attestation_json(result.attestation),
        ),
        "ok": result.ok,
        "failures": result.failures(),
    }


def _message(error: TargetError | None) -> str | None:
    return None if error is None else str(error.message)


def attestation_json(att: Attestation) -> dict[str, Any]:
    """The fields of ``att``, each syndic's digest as ``manifest_sha256`` (the marker's name for it), and its verdict."""
    served = [{**field_json(s, leave_out=("digest",)), "manifest_sha256": s.digest} for s in att.served]
    return {**field_json(att, served=served), "ok": att.ok, "weaker": att.weaker}


def status_lines(environment: str, statuses: tuple[SyndicStatus, ...], lock: LockInfo | None) -> list[str]:
    lines = [f"environment {environment}"]
    if lock is not None:
        lines.append(f"  locked: {lock.holder} since {lock.since}")
    width = max((len(s.syndic) for s in statuses), default=0)
    for s in statuses:
        if s.error:
            lines.append(f"  {s.syndic:<{width}}  UNREACHABLE  {s.error}  ({s.where})")
            continue
        lines.append(
            f"  {s.syndic:<{width}}  serves {s.served or 'nothing'}"
            f"  since {s.since or 'unknown'}  previous {s.previous or 'none'}"
        )
        for saltenv, rid in sorted(s.exposed.items()):
            lines.append(f"  {'':<{width}}  canary saltenv {saltenv} -> {rid or '?'}")
        lines.append(f"  {'':<{width}}  releases kept: {', '.join(s.releases) or 'none'}  ({s.where})")
        if s.staging:
            lines.append(f"  {'':<{width}}  unfinished staging: {', '.join(s.staging)} (removed by the next sync)")
        if s.note:
            lines.append(f"  {'':<{width}}  note: {s.note}")
    served = {s.served for s in statuses if not s.error}
    if len(served) > 1:
        lines.append(f"  WARNING: the syndics serve different releases: {', '.join(sorted(str(x) for x in served))}")
    return lines


def status_json(environment: str, statuses: tuple[SyndicStatus, ...], lock: LockInfo | None) -> dict[str, Any]:
    served = {s.served for s in statuses if not s.error}
    return {
        "environment": environment,
        "consistent": len(served) == 1 and not any(s.error for s in statuses),
        "lock": None if lock is None else lock.to_json(),
        "syndics": [
            {
                "syndic": s.syndic,
                "where": s.where,
                "served": s.served,
                "since": s.since,
                "previous": s.previous,
                "exposed": s.exposed,
                "releases": list(s.releases),
                "staging": list(s.staging),
                "error": s.error,
                "note": s.note,
            }
            for s in statuses
        ],
    }
