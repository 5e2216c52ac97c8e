"""The audit chain of a rollout: MR -> commit -> release -> Salt job ids -> per-minion results -> GitLab deployment.

* the merge request comes from the release's provenance (``release build --review``: the verdict of
  ``review --merged`` for the commit it built) and is journaled with ``rollout_started``;
* commit, release, job ids and results are the plan and the journal's own records;
* the GitLab deployment is created before the first batch (:func:`open_deployment`) and follows the journal
  (:class:`pipeline.deployments.DeploymentTrail`).

:func:`chain` puts them side by side for the report; :func:`served_chain` answers ``saltpipe status ENV`` for
the release an environment serves, from the state directory alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.deployments import DeploymentTrail
from pipeline.errors import SaltpipeError
from pipeline.rollout.journal import Progress, RolloutStore

__all__ = ["DeploymentTrail", "chain", "describe_chain", "open_deployment", "release_commit", "served_chain"]


def open_deployment(trail: DeploymentTrail | None, environment: str, commit: str | None) -> dict[str, Any]:
    """Create the GitLab deployment of ``commit`` (raises :class:`GitLabError`: nothing has run yet); returns
    the journal record saying what was recorded, or why nothing was."""
    if trail is None:
        return {"event": "deployment_skipped", "reason": "GitLab is not configured for this run "
                "(CI_SERVER_URL, CI_PROJECT_ID, SALTPIPE_GITLAB_TOKEN)"}
    if not commit:
        return {"event": "deployment_skipped", "reason": "the release's commit is unknown (built before saltpipe "
                "recorded commits): GitLab needs a SHA"}
    deployment = trail.open(environment, commit)
    return {"event": "deployment_recorded", "deployment_id": deployment.id, "iid": deployment.iid,
            "environment": deployment.environment, "sha": deployment.sha, "ref": deployment.ref,
            "status": deployment.status}


def release_commit(state_dir: Path, release: str) -> str | None:
    """The commit ``release`` was (last reviewed and) built from, ``None`` when the store does not know it."""
    from pipeline.release import ReleaseStore

    try:
        return ReleaseStore.for_state_dir(state_dir).get(release).origin()[0]
    except SaltpipeError:
        return None


def chain(progress: Progress, jobs: list[dict[str, Any]], totals: dict[str, int]) -> dict[str, Any]:
    """The links of one rollout, from its journal: ``jobs`` and ``totals`` as the report computed them."""
    plan = progress.plan
    started = progress.started or {}
    deployment = progress.deployment
    return {
        "merge_request": started.get("merge_request"),
        "commit": plan.commit,
        "release": plan.release,
        "rollout_id": plan.rollout_id,
        "jobs": [j["jid"] for j in jobs],
        "results": {k: v for k, v in totals.items() if v},
        "deployment": None if deployment is None else {
            "id": deployment.get("deployment_id"), "iid": deployment.get("iid"), "status": deployment.get("status"),
        },
        "deployment_failures": [
            {"status": f.get("status"), "message": f.get("message"), "hint": f.get("hint")}
            for f in progress.deployment_failures
        ],
    }


def served_chain(state_dir: Path, environment: str, release: str | None) -> dict[str, Any] | None:
    """The chain of the rollout that left ``release`` served on ``environment`` (its latest one), read from the
    rollout's report in the state directory; ``None`` when no rollout of it is recorded (a plain sync)."""
    if not release:
        return None
    store = RolloutStore(state_dir)
    for entry in reversed(store.history(environment)):
        if entry.get("release") != release:
            continue
        path = store.report_path(environment, str(entry["rollout_id"]))
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"rollout_id": entry["rollout_id"], "release": release, "error": f"report {path} unreadable"}
        return {**(report.get("chain") or {}), "outcome": report.get("outcome")}
    return None


def describe_chain(chain: dict[str, Any]) -> str:
    """``!42 -> commit 7d4e2a91c3b5 -> release rel-... -> 3 Salt job(s) -> succeeded 6 -> GitLab deployment
    #87 (success)``: one line of the audit chain (``saltpipe status`` and the rollout's result)."""
    mr = chain.get("merge_request") or {}
    deployment = chain.get("deployment")
    links = [
        f"!{mr['iid']}" if mr.get("iid") else "no merge request recorded",
        f"commit {(chain.get('commit') or '?')[:12]}",
        f"release {chain.get('release') or '?'}",
        f"rollout {chain.get('rollout_id')}" if chain.get("rollout_id") else "no rollout",
        f"{len(chain.get('jobs') or [])} Salt job(s)" + (f" ({', '.join(chain['jobs'][:3])}"
                                                          f"{', ...' if len(chain['jobs']) > 3 else ''})"
                                                          if chain.get("jobs") else ""),
        ", ".join(f"{k} {v}" for k, v in (chain.get("results") or {}).items()) or "no results",
        f"GitLab deployment #{deployment['iid']} ({deployment['status']})" if deployment else "no GitLab deployment",
    ]
    return " -> ".join(links)
