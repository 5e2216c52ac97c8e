"""The rollout journal: an append-only JSON-lines file of every decision and every per-minion result.

Layout in the state directory (``state_dir`` of salt/pipeline.yaml)::

    <state_dir>/rollouts/<env>/
        current                 the id of the environment's unfinished rollout (absent when there is none)
        history.jsonl           one line per finished rollout: id, release, commit, outcome, times
        <rollout-id>/
            plan.json           the plan, written before anything runs
            journal.jsonl       the journal (this module)
            report.json         the report, written when the rollout finishes

Each journal line is one JSON object ``{"seq": n, "at": "<UTC ISO time>", "event": "<type>", ...}``, flushed
and fsynced before the executor acts on it (per-minion results once per poll round, every decision at once). The event types and their fields are listed in
docs/rollout.md. :func:`replay` folds a journal back into a :class:`Progress`: what each batch and step did, so
a resumed rollout continues where the crashed one stopped and never re-runs a finished batch.

A crash can tear the last line; replay ignores a torn *last* line and refuses a torn line anywhere else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from pipeline.rollout.model import (
    JournalError,
    Outcome,
    Plan,
    RolloutStateError,
    Step,
    StepResult,
)

ROLLOUTS_DIR = "rollouts"
PLAN_FILE = "plan.json"
JOURNAL_FILE = "journal.jsonl"
REPORT_FILE = "report.json"
CURRENT_FILE = "current"
HISTORY_FILE = "history.jsonl"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _fsync_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class RolloutStore:
    """The rollouts of every environment under ``<state_dir>/rollouts``."""

    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir) / ROLLOUTS_DIR

    def env_dir(self, environment: str) -> Path:
        return self.root / environment

    def rollout_dir(self, environment: str, rollout_id: str) -> Path:
        return self.env_dir(environment) / rollout_id

    # -- the unfinished rollout ----------------------------------------------------------------------------------

    def current(self, environment: str) -> str | None:
        """The id of ``environment``'s unfinished rollout, or ``None``."""
        path = self.env_dir(environment) / CURRENT_FILE
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return value or None

    def set_current(self, environment: str, rollout_id: str | None) -> None:
        path = self.env_dir(environment) / CURRENT_FILE
        if rollout_id is None:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        _fsync_write(path, rollout_id + "\n")

    def latest(self, environment: str) -> str | None:
        """The most recent rollout of ``environment`` (unfinished or not): ids sort by start time."""
        current = self.current(environment)
        if current:
            return current
        ids = sorted(
            p.name for p in self.env_dir(environment).glob("*") if p.is_dir() and (p / PLAN_FILE).is_file()
        ) if self.env_dir(environment).is_dir() else []
        return ids[-1] if ids else None

    # -- plan ------------------------------------------------------------------------------------------------------

    def save_plan(self, plan: Plan) -> Path:
        directory = self.rollout_dir(plan.environment, plan.rollout_id)
        directory.mkdir(parents=True, exist_ok=False)
        path = directory / PLAN_FILE
        _fsync_write(path, json.dumps(plan.to_json(), indent=1, sort_keys=False) + "\n")
        return path

    def load_plan(self, environment: str, rollout_id: str) -> Plan:
        path = self.rollout_dir(environment, rollout_id) / PLAN_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RolloutStateError(
                f"rollout {rollout_id} of {environment} has no plan ({path})",
                hint=f"remove {self.env_dir(environment) / CURRENT_FILE} if that rollout never started",
            ) from None
        except ValueError as exc:
            raise JournalError(f"{path}: not valid JSON: {exc}") from exc
        return Plan.from_json(data)

    def journal(self, environment: str, rollout_id: str) -> "Journal":
        return Journal(self.rollout_dir(environment, rollout_id) / JOURNAL_FILE)

    def report_path(self, environment: str, rollout_id: str) -> Path:
        return self.rollout_dir(environment, rollout_id) / REPORT_FILE

    # -- history ---------------------------------------------------------------------------------------------------

    def record_finished(self, plan: Plan, outcome: Outcome, started_at: str | None, finished_at: str) -> None:
        entry = {
            "rollout_id": plan.rollout_id,
            "environment": plan.environment,
            "release": plan.release,
            "commit": plan.commit,
            "outcome": outcome.value,
            "started_at": started_at,
            "finished_at": finished_at,
        }
        path = self.env_dir(plan.environment) / HISTORY_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def history(self, environment: str) -> list[dict[str, Any]]:
        """Finished rollouts of ``environment``, oldest first (a torn last line is ignored)."""
        path = self.env_dir(environment) / HISTORY_FILE
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for i, line in enumerate(lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                if i != len(lines) - 1:
                    raise JournalError(f"{path}:{i + 1}: not valid JSON", hint="the file was edited or damaged") from None
        return out


class Journal:
    """Append-only JSON lines, each fsynced before :meth:`write` returns."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fh: TextIO | None = None
        self._seq = 0

    def open(self) -> "Journal":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._seq = sum(1 for _ in self.records())
        self._fh = open(self.path, "a", encoding="utf-8")
        return self

    def write(self, event: str, *, sync: bool = True, **fields: Any) -> dict[str, Any]:
        """Append one record. ``sync=False`` defers the fsync to the next :meth:`sync` or synced write: used for
        per-minion results, which the executor syncs once per poll round (one fsync per minion would cost
        minutes at 100,000 minions). A result lost in a crash is collected again by its jid on resume."""
        if self._fh is None:
            self.open()
        assert self._fh is not None
        self._seq += 1
        record = {"seq": self._seq, "at": _now(), "event": event, **fields}
        self._fh.write(json.dumps(record, sort_keys=False, default=str) + "\n")
        if sync:
            self.sync()
        return record

    def sync(self) -> None:
        """Flush and fsync everything written so far."""
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record in order; a torn last line is skipped, a torn line elsewhere raises JournalError."""
        try:
            with open(self.path, encoding="utf-8") as fh:
                lines = fh.read().split("\n")
        except FileNotFoundError:
            return
        if lines and lines[-1] == "":
            lines.pop()
        for i, line in enumerate(lines):
            try:
                record = json.loads(line)
            except ValueError:
                if i == len(lines) - 1:
                    return  # torn by a crash while writing; the action it announced did not happen yet
                raise JournalError(
                    f"{self.path}:{i + 1}: not valid JSON", hint="the journal was edited or damaged; restore it"
                ) from None
            if not isinstance(record, dict) or "event" not in record:
                raise JournalError(f"{self.path}:{i + 1}: not a journal record")
            yield record

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


# ----------------------------------------------------------------------------------------------------------------
# Replay


@dataclass
class StepProgress:
    """One step of one batch: the job it published and the per-minion results recorded so far."""

    jid: str | None = None
    targets: tuple[str, ...] = ()
    publishing: bool = False
    results: dict[str, StepResult] = field(default_factory=dict)
    finished: bool = False
    published_at: str | None = None
    job: tuple[str, ...] = ()  # the functions of the published job (several: a multi-function job)


@dataclass
class BatchProgress:
    index: int
    started: bool = False
    started_at: str | None = None
    finished_at: str | None = None
    steps: dict[Step, StepProgress] = field(default_factory=dict)
    gate: dict[str, Any] | None = None
    bake_started_at: str | None = None
    baked: bool = False
    finished: bool = False
    passed: bool | None = None

    def step(self, step: Step) -> StepProgress:
        return self.steps.setdefault(step, StepProgress())


@dataclass
class Progress:
    """Everything the journal says about one rollout."""

    plan: Plan
    started: dict[str, Any] | None = None
    batches: list[BatchProgress] = field(default_factory=list)
    promotion: dict[str, Any] | None = None
    halted: dict[str, Any] | None = None
    rollback_started: dict[str, Any] | None = None
    rollback_skipped: dict[str, Any] | None = None
    rollback_finished: dict[str, Any] | None = None
    promoted: dict[str, Any] | None = None
    retired: dict[str, Any] | None = None  # the canary saltenv was removed from the syndics
    retire_failed: dict[str, Any] | None = None  # ... or could not be (a warning; the outcome stands)
    reconciled: dict[str, Any] | None = None  # after a halt: which release each minion runs, read from them
    finished: dict[str, Any] | None = None
    resumes: list[dict[str, Any]] = field(default_factory=list)
    lookups: list[dict[str, Any]] = field(default_factory=list)
    deployment: dict[str, Any] | None = None  # GitLab's deployment record of this rollout, its last status
    deployment_failures: list[dict[str, Any]] = field(default_factory=list)  # updates GitLab did not take

    @property
    def no_rollback(self) -> bool:
        return bool((self.started or {}).get("no_rollback"))

    @property
    def outcome(self) -> Outcome | None:
        return Outcome(self.finished["outcome"]) if self.finished else None

    def state(self) -> str:
        """A one-word state for ``rollout status``."""
        if self.finished:
            return str(self.finished["outcome"])
        if self.rollback_started:
            return "rolling_back"
        if self.halted:
            return "halted"
        if all(b.finished and b.passed for b in self.batches):
            return "promoting"
        if any(b.started for b in self.batches):
            return "running"
        return "planned"


def new_progress(plan: Plan) -> Progress:
    """The progress of a rollout whose journal is empty."""
    return Progress(plan=plan, batches=[BatchProgress(b.index) for b in plan.batches])


#: Events whose record the progress keeps whole, as the field named (a later one of the same event replaces it).
_KEPT_WHOLE: dict[str, str] = {
    "rollout_started": "started",
    "promotion_checked": "promotion",
    "halted": "halted",
    "rollback_started": "rollback_started",
    "rollback_skipped": "rollback_skipped",
    "rollback_finished": "rollback_finished",
    "promoted": "promoted",
    "canary_retired": "retired",
    "canary_retire_failed": "retire_failed",
    "reconciled": "reconciled",
    "rollout_finished": "finished",
    "deployment_recorded": "deployment",
}


def apply_record(progress: Progress, rec: Mapping[str, Any]) -> None:
    """Fold one journal record into ``progress``. The executor calls this for every record it writes, and
    :func:`replay` for every record it reads, so a resumed rollout sees exactly what the crashed one saw."""

    def batch() -> BatchProgress:
        try:
            return progress.batches[int(rec["batch"])]
        except (KeyError, IndexError, ValueError, TypeError):
            raise JournalError(
                f"journal record {rec.get('seq')}: batch {rec.get('batch')!r} is not in the plan"
            ) from None

    event = rec["event"]
    kept = _KEPT_WHOLE.get(event)
    if kept is not None:
        setattr(progress, kept, dict(rec))
    elif event == "resumed":
        progress.resumes.append(dict(rec))
    elif event == "batch_started":
        b = batch()
        b.started, b.started_at = True, rec.get("at")
    elif event == "step_publishing":
        batch().step(Step(rec["step"])).publishing = True
    elif event == "step_published":
        sp = batch().step(Step(rec["step"]))
        sp.jid, sp.targets, sp.published_at = str(rec["jid"]), tuple(rec.get("targets") or ()), rec.get("at")
        sp.job = tuple(rec.get("job") or (rec.get("fun"),))
    elif event == "minion_result":
        result = StepResult.from_json(rec)
        batch().step(result.step).results[result.minion] = result
    elif event == "step_finished":
        batch().step(Step(rec["step"])).finished = True
    elif event == "lookup":
        progress.lookups.append(dict(rec))
    elif event == "bake_started":
        batch().bake_started_at = rec.get("at")
    elif event == "bake_finished":
        batch().baked = True
    elif event == "gate":
        batch().gate = dict(rec)
    elif event == "batch_finished":
        b = batch()
        b.finished, b.passed, b.finished_at = True, bool(rec.get("passed")), rec.get("at")
    elif event == "deployment_updated" and progress.deployment is not None:
        progress.deployment["status"] = rec.get("status")
    elif event == "deployment_record_failed":
        progress.deployment_failures.append(dict(rec))
    # Other events (promoting, error, rollback_requested, step_republished, newer versions' records) stay in the
    # file for the audit trail and change no state.


def replay(plan: Plan, records: Iterable[Mapping[str, Any]]) -> Progress:
    """Fold journal ``records`` of ``plan`` into a :class:`Progress`."""
    progress = new_progress(plan)
    for rec in records:
        apply_record(progress, rec)
    return progress


def load_progress(store: RolloutStore, environment: str, rollout_id: str) -> Progress:
    plan = store.load_plan(environment, rollout_id)
    return replay(plan, list(store.journal(environment, rollout_id).records()))
