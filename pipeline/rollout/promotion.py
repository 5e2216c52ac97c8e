"""Promotion rules: an environment that ``requires`` others gets a release only after a successful rollout of
that same release there, and only with the approvals its config asks for.

Approvals are recorded in ``<state_dir>/approvals/<env>/<release>.jsonl``: one line per approver (``name``, GitLab
user id, how GitLab proved who it is and why they may approve, when, and the OS user and host that recorded it),
so an approval in one pipeline and another one tomorrow add up. An approver counts once per release and
environment, only when GitLab vouched for them (:mod:`pipeline.rollout.approvals`; lines without a ``proof``, as
older versions wrote them, never count), only while GitLab still allows them, and never for a rollout they start.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.config import Environment, PipelineConfig
from pipeline.errors import UsageError
from pipeline.jsonfile import field_json
from pipeline.rollout.journal import RolloutStore
from pipeline.rollout.model import JournalError, Outcome, PromotionRefused

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@ -]{0,99}$")


@dataclass(frozen=True)
class VerifiedApprover:
    """An approver GitLab vouches for (:mod:`pipeline.rollout.approvals` establishes it, :class:`ApprovalStore`
    records it): who (``name``, ``user_id``), how it is known (``proof``) and why they may approve
    (``allowed_by``)."""

    name: str
    user_id: int
    proof: str
    allowed_by: str


@dataclass(frozen=True)
class Approval:
    name: str
    at: str
    recorded_by: str
    host: str
    user_id: int | None = None
    proof: str = ""
    allowed_by: str = ""

    def to_json(self) -> dict[str, Any]:
        return field_json(self)


@dataclass(frozen=True)
class PromotionCheck:
    """Why an environment may receive a release: the rollouts that satisfied ``requires`` and the approvals."""

    environment: str
    release: str
    satisfied_by: dict[str, str]
    approvals: tuple[Approval, ...]
    approvals_required: int
    starter: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "started_by": self.starter,
            "environment": self.environment,
            "release": self.release,
            "satisfied_by": dict(self.satisfied_by),
            "approvals": [a.to_json() for a in self.approvals],
            "approvals_required": self.approvals_required,
        }


class ApprovalStore:
    """Approvals per environment and release under ``<state_dir>/approvals``."""

    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir) / "approvals"

    def _path(self, environment: str, release: str) -> Path:
        return self.root / environment / f"{release}.jsonl"

    def list(self, environment: str, release: str) -> tuple[Approval, ...]:
        path = self._path(environment, release)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return ()
        seen: dict[str, Approval] = {}
        for i, line in enumerate(lines):
            try:
                data = json.loads(line)
                approval = Approval(
                    str(data["name"]), str(data["at"]), str(data["recorded_by"]), str(data["host"]),
                    data.get("user_id") if isinstance(data.get("user_id"), int) else None,
                    str(data.get("proof") or ""), str(data.get("allowed_by") or ""),
                )
            except (ValueError, KeyError, TypeError):
                if i == len(lines) - 1:
                    continue
                raise JournalError(f"{path}:{i + 1}: not an approval record", hint="the file was edited or damaged") from None
            if approval.name not in seen or (approval.proof and not seen[approval.name].proof):
                seen[approval.name] = approval  # a verified line wins over an older unverified one
        return tuple(seen.values())

    def record(self, environment: str, release: str, approver: VerifiedApprover,
               now: datetime | None = None) -> Approval:
        """Record ``approver``'s approval (once: a second one by the same name returns the first)."""
        name = approver.name.strip()
        if not _NAME_RE.match(name):
            raise UsageError(
                f"--approve {name!r}: not a valid approver name",
                hint="use the approver's login or e-mail (letters, digits, '.', '_', '@', '-', spaces)",
            )
        for existing in self.list(environment, release):
            if existing.name == name and existing.proof:
                return existing
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        approval = Approval(
            name=name,
            at=(now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
            recorded_by=user,
            host=socket.gethostname(),
            user_id=approver.user_id,
            proof=approver.proof,
            allowed_by=approver.allowed_by,
        )
        path = self._path(environment, release)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(approval.to_json(), sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return approval


def check_promotion(
    config: PipelineConfig,
    env: Environment,
    release: str,
    rollouts: RolloutStore,
    approvals: ApprovalStore,
    *,
    starter: str | None = None,
    still_allowed: Callable[[Approval], None] | None = None,
) -> PromotionCheck:
    """Check ``env``'s promotion rules for ``release``; :class:`PromotionRefused` listing everything missing.

    An approval counts when it carries GitLab's proof, is not by ``starter`` (who starts this rollout), and
    ``still_allowed`` (GitLab asked again; raises :class:`PromotionRefused`) accepts it."""
    problems: list[str] = []
    satisfied: dict[str, str] = {}
    for required in env.requires:
        config.environment(required)  # a UsageError if the config changed under us
        ok = [
            h for h in rollouts.history(required)
            if h.get("release") == release and h.get("outcome") == Outcome.SUCCEEDED.value
        ]
        if ok:
            satisfied[required] = str(ok[-1]["rollout_id"])
        else:
            problems.append(
                f"no successful rollout of {release} to {required} is recorded "
                f"(run `saltpipe rollout {required} --release {release}` first)"
            )
    given: list[Approval] = []
    ignored: list[str] = []
    for approval in approvals.list(env.name, release) if env.approvals_required else ():
        if not approval.proof:
            ignored.append(f"{approval.name} (not verified through GitLab)")
        elif starter is not None and approval.name == starter:
            ignored.append(f"{approval.name} (starts this rollout: no self-approval)")
        else:
            try:
                if still_allowed is not None:
                    still_allowed(approval)
            except PromotionRefused as exc:
                ignored.append(f"{approval.name} ({exc.message})")
            else:
                given.append(approval)
    if len(given) < env.approvals_required:
        names = ", ".join(a.name for a in given) or "none"
        problems.append(
            f"{env.name} needs {env.approvals_required} approval(s) of {release} by someone other than "
            f"{starter or 'the user starting the rollout'}, has {len(given)} ({names})"
            + (f"; not counted: {', '.join(ignored)}" if ignored else "")
            + f"; in CI an allowed approver plays {env.approvers.gate_job.format(environment=env.name)}, outside "
            f"CI runs `saltpipe rollout approve {env.name} --release {release}` with their own GitLab token"
        )
    if problems:
        raise PromotionRefused(
            f"promotion of {release} to {env.name} refused:\n  - " + "\n  - ".join(problems),
            hint="nothing was changed; satisfy the rules above and run the rollout again",
        )
    return PromotionCheck(env.name, release, satisfied, tuple(given), env.approvals_required, starter)
