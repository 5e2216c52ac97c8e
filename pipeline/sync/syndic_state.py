"""A syndic's ``saltpipe-state.json``: what saltpipe records beside the links, and pruning by it.

The links are the truth of what a syndic serves; the state file adds what a link cannot say - since when
``base`` serves its release, the release before it (the rollback target), the exposed canary saltenvs, a
history of switches, and the order releases were last used in, which :func:`prune` keeps by. Written after
every switch by the sync stage (:mod:`pipeline.sync.engine`) and by the recovery of a killed switch
(:mod:`pipeline.sync.switchlog`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pipeline.sync.layout import BASE_LINK, HISTORY_KEEP
from pipeline.sync.target import FileRootsTarget, TargetSnapshot


def now_utc() -> str:
    """The time stamp of the state file: UTC, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def record_switch(target: FileRootsTarget, link: str, release: str, before: str | None) -> None:
    """Update saltpipe-state.json after ``link`` was switched to ``release`` (from ``before``, what ``base``
    served until then): base/previous (or the exposed saltenv) and history."""
    snap = target.snapshot()
    state = _load(snap, target.name)
    now = now_utc()
    if link == BASE_LINK:
        current = state.get("base") or {}
        if current.get("release") != release:
            if current.get("release"):
                state["previous"] = current
            elif before and before != release:
                state["previous"] = {"release": before, "since": None}
            state["base"] = {"release": release, "since": now}
    else:
        state.setdefault("exposed", {})[link.split("/", 1)[1]] = {"release": release, "since": now}
    # A counter, not the clock, orders releases for pruning: two syncs can happen within the same second.
    state["seq"] = int(state.get("seq") or 0) + 1
    state["releases"].setdefault(release, {}).update({"last_used": now, "seq": state["seq"]})
    _add_history(state, "switch", release, link, now)
    target.write_state(state)


def _load(snap: TargetSnapshot, syndic: str) -> dict[str, Any]:
    """The syndic's state as read in ``snap``, or a fresh one (format 1) when it has none or an unknown format."""
    state = dict(snap.state) if snap.state.get("format") == 1 else {"format": 1}
    state["syndic"] = syndic
    state.setdefault("history", [])
    state["releases"] = dict(state.get("releases") or {})
    return state


def _add_history(state: dict[str, Any], action: str, release: str, link: str, at: str) -> None:
    state["history"] = (list(state.get("history") or []) + [{"at": at, "action": action, "release": release,
                                                             "link": link}])[-HISTORY_KEEP:]


def record_unexpose(target: FileRootsTarget, saltenv: str, link: str) -> None:
    """Update saltpipe-state.json after the canary link ``link`` of ``saltenv`` was removed."""
    state = _load(target.snapshot(), target.name)
    state.get("exposed", {}).pop(saltenv, None)
    _add_history(state, "unexpose", saltenv, link, now_utc())
    target.write_state(state)


def prune(target: FileRootsTarget, keep: int) -> tuple[str, ...]:
    """Remove staging leftovers and releases beyond ``keep``; returns the releases removed.

    Kept: every release a link serves, then the previous one (for a rollback), then the most recently switched
    to (by saltpipe-state.json; releases it does not know count as oldest) until ``keep`` are kept.
    """
    snap = target.snapshot()
    for leftover in snap.staging:
        target.discard(leftover)
    state = _load(snap, target.name)
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
