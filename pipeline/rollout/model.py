"""Data of a rollout: the saved plan, per-minion step results, outcomes, and the rollout's errors.

Everything here is plain, frozen data that round-trips through JSON (the plan file and the journal), so a
resumed rollout, ``saltpipe rollout status`` and the reports all read the same facts the executor wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

from pydantic import ValidationError

from pipeline.config import Gates
from pipeline.errors import EXIT_FINDINGS, InfrastructureError, SaltpipeError

PLAN_SCHEMA = "saltpipe-rollout-plan/1"


class RolloutError(SaltpipeError):
    """A rollout cannot start or continue for a reason the user must fix (exit 2)."""


class PlanError(RolloutError):
    """The environment cannot be planned: its target reaches no minion, a canary id is not in it, minions are
    unreachable, or a syndic does not serve the release."""


class PromotionRefused(RolloutError):
    """The environment's promotion rules are not met (no successful rollout of the release in a required
    environment, too few approvals). A gate decision, so it exits 1 like a failed batch gate."""

    exit_code = EXIT_FINDINGS


class RolloutStateError(RolloutError):
    """The state directory contradicts the request: an unfinished rollout exists, or there is none to resume."""


class JournalError(InfrastructureError):
    """The journal or plan file cannot be read or written."""


class Step(str, Enum):
    """What a batch does to each of its minions, in order. Rollback repeats sync and apply with the old code."""

    SYNC = "sync"
    APPLY = "apply"
    HEALTH = "health"
    ROLLBACK_SYNC = "rollback_sync"
    ROLLBACK_APPLY = "rollback_apply"


FORWARD_STEPS = (Step.SYNC, Step.APPLY)
ROLLBACK_STEPS = (Step.ROLLBACK_SYNC, Step.ROLLBACK_APPLY)

#: The grain a release's highstate sets to the release id it applied (docs/rollout.md, "Reconcile"): what
#: ``rollout status`` shows per minion after a halt, read from the minions themselves.
RELEASE_GRAIN = "saltpipe_release"


class StepStatus(str, Enum):
    OK = "ok"
    FAILED = "failed"
    MISSING = "missing"


class MinionResult(str, Enum):
    """A minion's result in the report."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    MISSING = "missing"
    ROLLED_BACK = "rolled_back"
    #: Its batch never ran (the rollout halted before): it still runs the previous release, untouched.
    UNTOUCHED = "untouched"


class Outcome(str, Enum):
    SUCCEEDED = "succeeded"
    HALTED = "halted"
    ROLLED_BACK = "rolled_back"


class StepResult(NamedTuple):
    """One minion's result for one step: judged from its return, never from an exit code.

    A NamedTuple, not a dataclass: immutable like the rest, and cheap enough to build 200,000 of per rollout of
    100,000 minions (bench/rollout.py).
    """

    minion: str
    step: Step
    status: StepStatus
    jid: str | None
    retcode: int | None = None
    reasons: tuple[str, ...] = ()
    #: Where the return was found: event, master_cache, syndic_cache:<id>; None when it never was.
    source: str | None = None
    #: Sum of the state durations Salt reported (state.apply), in milliseconds.
    duration_ms: float | None = None
    changes: int = 0
    #: Seconds from publish to the moment the return was seen.
    elapsed_s: float | None = None
    #: Paths of the file states the return holds (``apply``: those that changed something; ``rollback_apply``:
    #: every one) - the rollback report's "left behind" (docs/rollout.md, "What a rollback leaves behind").
    files: tuple[str, ...] = ()
    #: A failed return's failed states ({state, id, name, comment, changes}) and its clipped output (JSON text).
    states: tuple[dict[str, Any], ...] = ()
    output: str | None = None

    def to_json(self, with_ids: bool = True) -> dict[str, Any]:
        """Plain data; ``with_ids=False`` leaves out ``minion`` and ``step`` (the report nests by both)."""
        # _value_ rather than .value: the Enum property costs more than the rest of this method.
        data: dict[str, Any] = (
            {"minion": self.minion, "step": self.step._value_, "status": self.status._value_, "jid": self.jid}
            if with_ids
            else {"status": self.status._value_, "jid": self.jid}
        )
        if self.retcode is not None:
            data["retcode"] = self.retcode
        if self.reasons:
            data["reasons"] = list(self.reasons)
        if self.source is not None:
            data["source"] = self.source
        if self.duration_ms is not None:
            data["duration_ms"] = round(self.duration_ms, 3)
        if self.changes:
            data["changes"] = self.changes
        if self.elapsed_s is not None:
            data["elapsed_s"] = round(self.elapsed_s, 3)
        if self.files:
            data["files"] = list(self.files)
        if self.states:
            data["states"] = [dict(s) for s in self.states]
        if self.output is not None:
            data["output"] = self.output
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "StepResult":
        return cls(
            minion=str(data["minion"]),
            step=Step(data["step"]),
            status=StepStatus(data["status"]),
            jid=data.get("jid"),
            retcode=data.get("retcode"),
            reasons=tuple(data.get("reasons") or ()),
            source=data.get("source"),
            duration_ms=data.get("duration_ms"),
            changes=int(data.get("changes") or 0),
            elapsed_s=data.get("elapsed_s"),
            files=tuple(data.get("files") or ()),
            states=tuple(data.get("states") or ()),
            output=data.get("output"),
        )


@dataclass(frozen=True)
class PlannedBatch:
    """One batch of the plan. ``spec`` is the schedule entry it came from (``canary``, ``1``, ``5%``);
    ``reached`` is how many minions have the release once it passed (the canary and earlier batches included)."""

    index: int
    name: str
    spec: str
    minions: tuple[str, ...]
    reached: int

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "spec": self.spec, "reached": self.reached,
                "minions": list(self.minions)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PlannedBatch":
        return cls(int(data["index"]), str(data["name"]), str(data["spec"]), tuple(data["minions"]),
                   int(data["reached"]))


@dataclass(frozen=True)
class Plan:
    """The saved plan of one rollout: who gets the release, in which batches, judged by which gates."""

    rollout_id: str
    environment: str
    release: str
    saltenv: str
    previous_release: str | None
    commit: str | None
    target: str
    population: int
    batches: tuple[PlannedBatch, ...]
    #: Schedule entries that gave no minion at this population (``("25%", "reached already")``).
    skipped: tuple[tuple[str, str], ...]
    syndic_of: Mapping[str, str | None]
    #: The gates saved when the rollout started: the only ones its batches are judged by (a resume never reads
    #: the live config's). ``None`` for a plan saved without them (not written by saltpipe, or edited): such a
    #: rollout can be shown and rolled back, not resumed (:func:`pipeline.rollout.entry.resume_rollout`).
    gates: Gates | None
    schedule: str
    created_at: str
    resolution_jid: str | None = None
    client: str = ""
    #: Releases each syndic attested to serve as the release's saltenv at planning time.
    attested: Mapping[str, str] = field(default_factory=dict)
    #: ``rollout`` (a new release, canary-first, promoted to base at the end) or ``rollback`` (``base`` switched
    #: back to ``release`` first, then applied batch by batch to the minions of rollout ``rolls_back``).
    kind: str = "rollout"
    rolls_back: str | None = None

    @property
    def minions(self) -> tuple[str, ...]:
        return tuple(m for b in self.batches for m in b.minions)

    def batch_of(self) -> dict[str, int]:
        return {m: b.index for b in self.batches for m in b.minions}

    def require_gates(self) -> Gates:
        """The saved gates; a :class:`RolloutStateError` for a plan without them (never taken from the config)."""
        if self.gates is None:
            raise RolloutStateError(
                f"the plan of rollout {self.rollout_id} of {self.environment} holds no gates, and a rollout's "
                "batches are judged only by the gates saved when it started (never the live config's)",
                hint=f"`saltpipe rollback {self.environment}` rolls back the minions it touched (that needs no "
                     "gate); then start the rollout again",
            )
        return self.gates

    def gates_json(self) -> dict[str, Any] | None:
        """The gates as plain data (the plan file, the report); ``None`` when the plan has none."""
        return self.gates.model_dump(mode="json") if self.gates is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": PLAN_SCHEMA,
            "rollout_id": self.rollout_id,
            "environment": self.environment,
            "release": self.release,
            "saltenv": self.saltenv,
            "previous_release": self.previous_release,
            "commit": self.commit,
            "target": self.target,
            "population": self.population,
            "schedule": self.schedule,
            "gates": self.gates_json(),
            "created_at": self.created_at,
            "resolution_jid": self.resolution_jid,
            "client": self.client,
            "attested": dict(self.attested),
            "kind": self.kind,
            "rolls_back": self.rolls_back,
            "skipped": [list(s) for s in self.skipped],
            "syndic_of": dict(self.syndic_of),
            "batches": [b.to_json() for b in self.batches],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Plan":
        if data.get("schema") != PLAN_SCHEMA:
            raise JournalError(
                f"not a saltpipe rollout plan (schema {data.get('schema')!r}, expected {PLAN_SCHEMA!r})",
                hint="was the state directory written by another saltpipe version?",
            )
        return cls(
            rollout_id=str(data["rollout_id"]),
            environment=str(data["environment"]),
            release=str(data["release"]),
            saltenv=str(data["saltenv"]),
            previous_release=data.get("previous_release"),
            commit=data.get("commit"),
            target=str(data["target"]),
            population=int(data["population"]),
            batches=tuple(PlannedBatch.from_json(b) for b in data["batches"]),
            skipped=tuple((str(a), str(b)) for a, b in data.get("skipped") or ()),
            syndic_of=dict(data.get("syndic_of") or {}),
            gates=_gates(data.get("gates")),
            schedule=str(data.get("schedule", "")),
            created_at=str(data["created_at"]),
            resolution_jid=data.get("resolution_jid"),
            client=str(data.get("client", "")),
            attested=dict(data.get("attested") or {}),
            kind=str(data.get("kind", "rollout")),
            rolls_back=data.get("rolls_back"),
        )


def _gates(data: Any) -> Gates | None:
    """A saved plan's gates. Every plan saltpipe wrote holds all of their fields (``model_dump``); a plan with
    none is ``None``, and one with only some of them is refused rather than completed from defaults (a missing
    health check or bake time would silently make the resumed rollout's gates weaker than the ones it started
    with)."""
    if not data:
        return None
    missing = sorted(set(Gates.model_fields) - set(data)) if isinstance(data, Mapping) else []
    try:
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        return Gates.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raise JournalError(
            f"the plan's gates cannot be read ({exc})",
            hint="was the plan file edited? its gates decide the rollout's batches; restore it, or roll back",
        ) from None


@dataclass(frozen=True)
class GateDecision:
    """Whether a batch passed: counts over the batch's size and the configured maxima."""

    batch: int
    size: int
    failed: int
    missing: int
    max_failure_ratio: float
    max_missing_ratio: float
    #: Set when the batch passed the ratios but its health check did not (or the other way round).
    health_failed: int = 0

    @property
    def failure_ratio(self) -> float:
        return self.failed / self.size if self.size else 0.0

    @property
    def missing_ratio(self) -> float:
        return self.missing / self.size if self.size else 0.0

    @property
    def passed(self) -> bool:
        # Compare counts, not floats: 1 failure in 3 against 0.34 must pass, against 0.33 must not.
        return (
            self.failed <= self.max_failure_ratio * self.size + 1e-9
            and self.missing <= self.max_missing_ratio * self.size + 1e-9
        )

    def describe(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"gate {verdict}: {self.failed}/{self.size} failed (max {self.max_failure_ratio:.0%}), "
            f"{self.missing}/{self.size} missing (max {self.max_missing_ratio:.0%})"
        )

    def to_json(self) -> dict[str, Any]:
        counts = {name: getattr(self, name) for name in ("batch", "size", "failed", "missing", "health_failed")}
        return {
            **counts,
            "failure_ratio": round(self.failure_ratio, 6),
            "missing_ratio": round(self.missing_ratio, 6),
            "max_failure_ratio": self.max_failure_ratio,
            "max_missing_ratio": self.max_missing_ratio,
            "passed": self.passed,
        }
