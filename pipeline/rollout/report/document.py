"""The rollout report: one JSON document built from a rollout's plan and journal (never from the live run).

Shape (``schema: saltpipe-rollout-report/1``; docs/rollout.md lists every field)::

    {release, commit, environment, kind, outcome: succeeded|halted|rolled_back|null, state, rollout_id,
     previous_release, saltenv, started_at, finished_at, started_by, population, schedule, gates,
     promotion: {started_by, satisfied_by, approvals, approvals_required}, promoted, halted: {batch, batch_name, reason}, rollback,
     totals: {succeeded, failed, missing, rolled_back, untouched, pending},
     batches: [{index, name, spec, status: passed|failed|running|not_run, size, reached, started_at, finished_at,
                gate, jobs: {sync, apply, health, rollback_sync, rollback_apply},
                minions: [{id, syndic, result, jid, before_rollback (rolled_back only: failed|missing|succeeded),
                           steps: {step: {status, jid, retcode, reasons, states, output, ...}}}]}],
     audit: [{commit (of the release the step applied), release, batch, step, jid, fun, minions, ok, failed,
              missing}],
     chain: {merge_request: {iid, url, title, approvers} | null, commit, release, rollout_id, jobs: [jid],
             results: {succeeded: n, ...}, deployment: {id, iid, status} | null, deployment_failures: [...]}}

A minion's ``result``: ``succeeded`` (every step ok), ``failed`` (a step failed: its reasons are in ``steps``),
``missing`` (no return after every lookup), ``rolled_back`` (it ran the release, then the previous release was
applied to it successfully), ``untouched`` (its batch never ran), ``pending`` (an unfinished rollout).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline.rollout.audit import chain
from pipeline.rollout.journal import BatchProgress, Progress
from pipeline.rollout.model import ROLLBACK_STEPS, MinionResult, Step, StepStatus

REPORT_SCHEMA = "saltpipe-rollout-report/1"
_STEP_ORDER = (Step.SYNC, Step.APPLY, Step.HEALTH, Step.ROLLBACK_SYNC, Step.ROLLBACK_APPLY)


_FORWARD = (Step.SYNC, Step.APPLY, Step.HEALTH)


def _minion_results(bp: BatchProgress, minions: tuple[str, ...]) -> list[str]:
    """Each minion's report result in one pass over the batch's steps (100,000 minions must stay cheap)."""
    if not bp.started:
        return [MinionResult.UNTOUCHED._value_] * len(minions)
    forward = [bp.steps[s].results for s in _FORWARD if s in bp.steps]
    rb_sync, rb_apply = (bp.steps[s].results if s in bp.steps else {} for s in ROLLBACK_STEPS)
    ok, failed, missing = StepStatus.OK, StepStatus.FAILED, StepStatus.MISSING
    out = []
    for minion in minions:
        a, b = rb_sync.get(minion), rb_apply.get(minion)
        if a is not None and b is not None and a.status is ok and b.status is ok:
            out.append(MinionResult.ROLLED_BACK._value_)
            continue
        statuses = [r.status for r in (results.get(minion) for results in forward) if r is not None]
        if failed in statuses:
            out.append(MinionResult.FAILED._value_)
        elif missing in statuses:
            out.append(MinionResult.MISSING._value_)
        elif bp.finished and statuses:
            out.append(MinionResult.SUCCEEDED._value_)
        else:
            out.append("pending")
    return out


def _batch_status(bp: BatchProgress) -> str:
    if not bp.started:
        return "not_run"
    if not bp.finished:
        return "running"
    return "passed" if bp.passed else "failed"


def _left_behind(bp: BatchProgress, minion: str) -> list[str]:
    """Files the forward apply put on ``minion`` that its rollback (the previous release applied) does not manage:
    applying an older release never removes what only the newer one managed, so they stay (docs/rollout.md)."""
    forward = bp.steps.get(Step.APPLY)
    back = bp.steps.get(Step.ROLLBACK_APPLY)
    done = back.results.get(minion) if back else None
    fwd = forward.results.get(minion) if forward else None
    if done is None or done.status is not StepStatus.OK or fwd is None or not fwd.files:
        return []
    managed = set(done.files)
    return [path for path in fwd.files if path not in managed]


def release_commits(state_dir: Path, release_ids: Iterable[str | None]) -> dict[str, str]:
    """Release id -> the commit it was built from, for the ids the release store under ``state_dir`` holds."""
    from pipeline.release import ReleaseStore  # pylint: disable=import-outside-toplevel  # only when asked

    store = ReleaseStore.for_state_dir(state_dir)
    out = {}
    for release_id in release_ids:
        if release_id and store.exists(release_id):
            commit = store.get(release_id).commit
            if commit:
                out[release_id] = commit
    return out


def _forward_result(steps: Mapping[str, Mapping[str, Any]]) -> str:
    """What a rolled-back minion's run of the release gave, before the rollback: failed, missing or succeeded."""
    statuses = {steps[s._value_]["status"] for s in _FORWARD if s._value_ in steps}
    if "failed" in statuses:
        return "failed"
    return "missing" if "missing" in statuses else "succeeded"


def build_report(progress: Progress, commits: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The report of ``progress`` as plain data (JSON-serialisable, deterministic key order).

    ``commits`` (release id -> commit, :func:`release_commits`) names the commit of the release a rollback
    step applied (the previous release); without it those audit rows say ``null``, never the new commit."""
    commits = commits or {}
    plan = progress.plan
    started = progress.started or {}
    finished = progress.finished or {}
    totals = {r: 0 for r in ("succeeded", "failed", "missing", "rolled_back", "untouched", "pending")}
    batches = []
    audit = []
    left_behind: dict[str, list[str]] = {}
    running = (progress.reconciled or {}).get("releases") or {}
    for planned, bp in zip(plan.batches, progress.batches):
        minions = []
        step_results = [(step._value_, bp.steps[step].results) for step in _STEP_ORDER if step in bp.steps]
        for minion, result in zip(planned.minions, _minion_results(bp, planned.minions)):
            totals[result] = totals.get(result, 0) + 1
            steps = {}
            jid = None
            for name, results in step_results:
                found = results.get(minion)
                if found is None:
                    continue
                steps[name] = found.to_json(with_ids=False)
                if found.step is Step.SYNC or found.step is Step.APPLY:
                    jid = found.jid or jid
            entry: dict[str, Any] = {"id": minion, "syndic": plan.syndic_of.get(minion), "result": result, "jid": jid}
            if steps:
                entry["steps"] = steps
            left = _left_behind(bp, minion)
            if left:
                entry["left_behind"] = left_behind[minion] = left
            if minion in running:
                entry["running"] = running[minion]
            if result == "rolled_back":
                entry["before_rollback"] = _forward_result(steps)
            minions.append(entry)
        jobs = {step.value: bp.steps[step].jid for step in _STEP_ORDER if step in bp.steps and bp.steps[step].jid}
        for step in _STEP_ORDER:
            sp = bp.steps.get(step)
            if sp is None or not sp.jid:
                continue
            statuses = [r.status for r in sp.results.values()]
            audit.append(
                {
                    "commit": plan.commit if step not in ROLLBACK_STEPS else commits.get(plan.previous_release or ""),
                    "release": plan.release if step not in ROLLBACK_STEPS else plan.previous_release,
                    "batch": planned.index,
                    "step": step.value,
                    "jid": sp.jid,
                    "published_at": sp.published_at,
                    "minions": len(sp.targets),
                    "ok": statuses.count(StepStatus.OK),
                    "failed": statuses.count(StepStatus.FAILED),
                    "missing": statuses.count(StepStatus.MISSING),
                }
            )
        batches.append(
            {
                "index": planned.index,
                "name": planned.name,
                "spec": planned.spec,
                "status": _batch_status(bp),
                "size": len(planned.minions),
                "reached": planned.reached,
                "started_at": bp.started_at,
                "finished_at": bp.finished_at,
                "gate": _clean_gate(bp.gate),
                "jobs": jobs,
                "minions": minions,
            }
        )
    rollback: dict[str, Any] = {"status": "not_needed"}
    if progress.rollback_skipped:
        rollback = {"status": "skipped", "reason": progress.rollback_skipped.get("reason")}
    elif progress.rollback_finished:
        rb = progress.rollback_finished
        rollback = {
            "status": "done",
            "release": plan.previous_release,
            "rolled_back": rb.get("rolled_back", 0),
            "failed": rb.get("failed", []),
            "missing": rb.get("missing", []),
            "left_behind": left_behind,
        }
    elif progress.rollback_started:
        rollback = {"status": "running", "release": plan.previous_release}
    promotion = progress.promotion or {}
    return {
        "schema": REPORT_SCHEMA,
        "kind": plan.kind,
        "rollout_id": plan.rollout_id,
        "rolls_back": plan.rolls_back,
        "environment": plan.environment,
        "release": plan.release,
        "commit": plan.commit,
        "saltenv": plan.saltenv,
        "previous_release": plan.previous_release,
        "outcome": finished.get("outcome"),
        "state": progress.state(),
        "started_at": started.get("at"),
        "finished_at": finished.get("at"),
        "started_by": f"{started.get('user')}@{started.get('host')}" if started else None,
        "resumed": [{"at": r.get("at"), "by": f"{r.get('user')}@{r.get('host')}"} for r in progress.resumes],
        "population": plan.population,
        "target": plan.target,
        "schedule": plan.schedule,
        "skipped_schedule_entries": [list(s) for s in plan.skipped],
        "gates": plan.gates_json() or {},
        "promotion": {
            "started_by": promotion.get("started_by"),
            "satisfied_by": promotion.get("satisfied_by", {}),
            "approvals": promotion.get("approvals", []),
            "approvals_required": promotion.get("approvals_required", 0),
        },
        "promoted": bool(progress.promoted) and plan.kind == "rollout",
        "halted": _halted(progress),
        "rollback": rollback,
        "reconciled": _reconciled(progress.reconciled),
        "totals": totals,
        "batches": batches,
        "audit": audit,
        "chain": chain(progress, audit, totals),
    }


def _halted(progress: Progress) -> dict[str, Any] | None:
    """Where the rollout halted: the batch's index and its name as the plan calls it (``canary``, ``batch 1``)."""
    if not progress.halted:
        return None
    index = progress.halted.get("batch")
    names = {b.index: b.name for b in progress.plan.batches}
    return {"batch": index, "batch_name": names.get(index, f"batch {index}"), "reason": progress.halted.get("reason")}


def _reconciled(rec: dict[str, Any] | None) -> dict[str, Any] | None:
    """Which release each minion runs, as the minions said after the halt (grain ``saltpipe_release``)."""
    if rec is None:
        return None
    by_release: dict[str, list[str]] = {}
    for minion, release in sorted((rec.get("releases") or {}).items()):
        by_release.setdefault(str(release) if release else "unknown", []).append(minion)
    return {"at": rec.get("at"), "grain": rec.get("grain"), "by_release": by_release,
            "unanswered": list(rec.get("unanswered") or [])}


def _clean_gate(gate: dict[str, Any] | None) -> dict[str, Any] | None:
    if gate is None:
        return None
    return {k: v for k, v in gate.items() if k not in ("seq", "at", "event")}


def write_json(report: dict[str, Any], path: Path) -> Path:
    """Write ``report`` to ``path`` atomically (readers never see half a report)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=1)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path
