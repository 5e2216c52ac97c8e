"""What the status page shows, read from the state directory (and the job cache, when one is configured).

Read-only: nothing here writes a file, takes a lock or talks to a minion. Sources:

* ``<state_dir>/releases/``   the release store (manifests, where each came from) - :mod:`pipeline.release.store`
* ``<state_dir>/rollouts/``   plans, journals, reports, history - :mod:`pipeline.rollout.journal`
* ``<state_dir>/approvals/``  approvals per environment and release - :mod:`pipeline.rollout.promotion`
* ``<state_dir>/freeze-overrides.jsonl`` - :mod:`pipeline.freeze`
* each syndic's file_roots (``saltpipe-state.json`` and the ``current`` link) - :mod:`pipeline.sync.engine`
* the MoM's job cache (``jobs.list_job``), for a cell's full state output - :mod:`pipeline.web.jobcache`

No secrets are shown: the config holds none (passwords and webhook URLs come from the environment, which is never
read here), and state output passes through :func:`redact` first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from pipeline.config import PipelineConfig
from pipeline.errors import SaltpipeError
from pipeline.freeze import active_window, read_overrides
from pipeline.release.store import Release, ReleaseStore
from pipeline.rollout.report import build_report
from pipeline.rollout.journal import RolloutStore, load_progress
from pipeline.rollout.promotion import ApprovalStore

_MR_RE = re.compile(r"See merge request (?P<project>\S+)!(?P<iid>\d+)")
_SECRET_KEY = re.compile(r"pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential", re.I)
REDACTED = "<redacted>"


class JobCache(Protocol):
    """Full returns of a job, by minion (the MoM's job cache)."""

    def returns(self, jid: str) -> Mapping[str, Any]: ...


def redact(value: Any) -> Any:
    """``value`` with every mapping entry whose key looks like a secret replaced by ``<redacted>``."""
    if isinstance(value, Mapping):
        return {k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


@dataclass(frozen=True)
class StatusData:
    """The state directory of ``config`` (``state_dir`` resolved by the caller), read on every call."""

    config: PipelineConfig
    state_dir: Path
    repo: Path | None = None
    job_cache: JobCache | None = None

    @property
    def rollouts(self) -> RolloutStore:
        return RolloutStore(self.state_dir)

    @property
    def releases(self) -> ReleaseStore:
        return ReleaseStore.for_state_dir(self.state_dir)

    # -- environments ------------------------------------------------------------------------------------------

    def environments(self) -> list[dict[str, Any]]:
        """Per environment: its schedule, freeze state, current/latest rollout and what each syndic serves."""
        return [self.environment(name) for name in self.config.promotion_order()]

    def environment(self, name: str) -> dict[str, Any]:
        from pipeline.sync import environment_status, open_targets  # pylint: disable=import-outside-toplevel

        env = self.config.environment(name)
        with open_targets(env) as targets:
            statuses = environment_status(targets)
        latest_id = self.rollouts.latest(name)
        latest = self._summary(name, latest_id) if latest_id else None
        attested = {}
        if latest_id:
            try:
                attested = dict(self.rollouts.load_plan(name, latest_id).attested)
            except SaltpipeError:
                attested = {}
        syndics = []
        for st in statuses:
            release = self._release_or_none(st.served)
            syndics.append({
                "name": st.syndic,
                "where": st.where,
                "release": st.served,
                "commit": release.commit if release else None,
                "mr": self.merge_request_of(release.commit) if release and release.commit else None,
                "synced_at": st.since,
                "previous": st.previous,
                "exposed": sorted(st.exposed),
                "attested": attested.get(st.syndic),
                "error": st.error,
                "note": st.note,
            })
        frozen = active_window(env.freeze, datetime.now(timezone.utc))
        return {
            "name": name,
            "description": env.description,
            "tier": env.tier,
            "schedule": env.describe_schedule(),
            "target": env.target,
            "requires": list(env.requires),
            "freeze": [w.describe() for w in env.freeze],
            "frozen": {"window": frozen[0].name, "until": frozen[2].isoformat()} if frozen else None,
            "current": self.rollouts.current(name),
            "latest": latest,
            "syndics": syndics,
            "consistent": len({s["release"] for s in syndics}) <= 1 and not any(s["error"] for s in syndics),
        }

    # -- releases ------------------------------------------------------------------------------------------------

    def _release_or_none(self, release_id: str | None) -> Release | None:
        if not release_id:
            return None
        try:
            return self.releases.get(release_id)
        except SaltpipeError:
            return None

    def merge_request_of(self, commit: str) -> str | None:
        """``project!iid`` from a GitLab merge commit's message ("See merge request ..."), if the repo has it."""
        if self.repo is None:
            return None
        try:
            import git  # pylint: disable=import-outside-toplevel

            message = git.Repo(self.repo).commit(commit).message
        except Exception:  # pylint: disable=broad-except  # a commit not in this clone: no MR to show
            return None
        match = _MR_RE.search(str(message))
        return f"{match['project']}!{match['iid']}" if match else None

    def release_list(self) -> list[dict[str, Any]]:
        running = self._where_running()
        return [
            {"id": r.id, "commit": r.commit, "built_at": r.built_at, "files": len(r.manifest.entries),
             "bytes": r.manifest.total_bytes, "digest": r.manifest.digest, "running": running.get(r.id, [])}
            for r in reversed(self.releases.list())
        ]

    def release(self, release_id: str) -> dict[str, Any]:
        r = self.releases.get(release_id)
        return {
            "id": r.id,
            "commit": r.commit,
            "mr": self.merge_request_of(r.commit) if r.commit else None,
            "built_at": r.built_at,
            "rev": r.meta.get("rev"),
            "digest": r.manifest.digest,
            "bytes": r.manifest.total_bytes,
            "files": [{"path": e.path, "size": e.size, "mode": f"{e.mode:o}", "sha256": e.sha256}
                      for e in r.manifest.entries],
            "running": self._where_running().get(r.id, []),
            "rollouts": [h for env in self.config.environments for h in self.rollouts.history(env)
                         if h.get("release") == r.id],
        }

    def _where_running(self) -> dict[str, list[str]]:
        """Release id -> ``env/syndic`` entries that serve it as base (from each syndic's file_roots)."""
        out: dict[str, list[str]] = {}
        for env in self.environments():
            for s in env["syndics"]:
                if s["release"]:
                    out.setdefault(s["release"], []).append(f"{env['name']}/{s['name']}")
        return out

    # -- rollouts -----------------------------------------------------------------------------------------------

    def _summary(self, env: str, rollout_id: str) -> dict[str, Any] | None:
        try:
            report = build_report(load_progress(self.rollouts, env, rollout_id))
        except SaltpipeError:
            return None
        return {k: report[k] for k in ("rollout_id", "environment", "release", "kind", "outcome", "state",
                                       "started_at", "finished_at", "totals", "halted")}

    def rollout_list(self) -> list[dict[str, Any]]:
        """Every rollout with a plan, newest first (ids sort by start time)."""
        out = []
        for env in self.config.environments:
            directory = self.rollouts.env_dir(env)
            if not directory.is_dir():
                continue
            for child in directory.iterdir():
                if child.is_dir() and (child / "plan.json").is_file():
                    summary = self._summary(env, child.name)
                    if summary:
                        out.append(summary)
        return sorted(out, key=lambda r: r["rollout_id"], reverse=True)

    def rollout(self, env: str, rollout_id: str) -> dict[str, Any]:
        """The report of one rollout plus its gate decisions and journal (the grid page's data)."""
        self.config.environment(env)
        progress = load_progress(self.rollouts, env, rollout_id)
        report = build_report(progress)
        records = list(self.rollouts.journal(env, rollout_id).records())
        report["gates_decided"] = [r for r in records if r["event"] == "gate"]
        report["journal"] = records
        report["warnings"] = [r for r in records if r["event"] in ("notify_failed", "canary_retire_failed", "error")]
        report["freeze_override"] = next((r for r in records if r["event"] == "freeze_overridden"), None)
        report["live"] = report["outcome"] is None
        return report

    def cell(self, env: str, rollout_id: str, batch: int, minion: str) -> dict[str, Any]:
        """One grid cell: the minion's journaled step results and, from the job cache, its state output."""
        report = self.rollout(env, rollout_id)
        try:
            entry = next(m for m in report["batches"][batch]["minions"] if m["id"] == minion)
        except (IndexError, StopIteration):
            raise KeyError(f"{minion} is not in batch {batch} of {rollout_id}") from None
        output: dict[str, Any] = {}
        if self.job_cache is not None:
            for step, result in (entry.get("steps") or {}).items():
                jid = result.get("jid")
                if not jid:
                    continue
                try:
                    ret = self.job_cache.returns(jid).get(minion)
                except Exception as exc:  # pylint: disable=broad-except  # a page, not a gate: say why
                    output[step] = {"error": f"job cache: {exc}"}
                    continue
                if ret is not None:
                    output[step] = {"return": redact(ret)}
        return {"rollout": report, "batch": report["batches"][batch], "minion": entry, "output": output,
                "job_cache": self.job_cache is not None}

    # -- the audit chain ---------------------------------------------------------------------------------------

    def audit(self) -> dict[str, Any]:
        """commit -> release -> rollouts (outcome, approvals, overrides), per environment, newest first."""
        approvals = ApprovalStore(self.state_dir)
        chain = []
        for env in self.config.environments:
            for h in reversed(self.rollouts.history(env)):
                release = self._release_or_none(h.get("release"))
                chain.append({
                    **h,
                    "built_at": release.built_at if release else None,
                    "approvals": [a.to_json() for a in approvals.list(env, str(h.get("release")))],
                })
        chain.sort(key=lambda h: str(h.get("finished_at")), reverse=True)
        return {"chain": chain, "freeze_overrides": list(reversed(read_overrides(self.state_dir)))}
