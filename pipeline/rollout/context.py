"""What a rollout is given and what it hands back: :class:`RolloutContext`, :class:`RolloutRequest`,
:class:`RolloutResult` (the context's :class:`~pipeline.rollout.steps.Recovery` lives with the steps it tunes).

Contract: the context and the request are frozen and built once by the caller (the CLI, the demo, tests); the
stage never reads the environment, the process environment or a global. ``clock`` and ``http_get`` are
injected so that unit tests spend no real time and open no socket; ``observer`` sees every journal record as it
is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Environment, PipelineConfig
from pipeline.rollout.approvals import GitLabApprovals
from pipeline.rollout.audit import DeploymentTrail
from pipeline.rollout.health import HttpGet, http_status
from pipeline.rollout.journal import Progress, RolloutStore
from pipeline.rollout.model import Outcome, Plan
from pipeline.rollout.promotion import ApprovalStore
from pipeline.rollout.serving import ReleaseServing
from pipeline.rollout.steps import Recovery
from pipeline.salt_client.base import SaltClient
from pipeline.salt_client.polling import Clock, SystemClock

Observer = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class RolloutContext:
    """Everything a rollout needs. ``observer`` sees every journal record as it is written (progress display)."""

    config: PipelineConfig
    environment: Environment
    client: SaltClient
    serving: ReleaseServing
    state_dir: Path
    recovery: Recovery = Recovery()
    clock: Clock = field(default_factory=SystemClock)
    http_get: HttpGet = http_status
    observer: Observer | None = None
    #: Rollout notifications (pipeline/notify.py); its failures are journaled as ``notify_failed``, never raised.
    notifier: Any = None
    #: Checks approvals through GitLab (None: GitLab not configured; an environment needing approvals refuses).
    authority: GitLabApprovals | None = None
    #: Records the rollout in GitLab's deployments API (None: GitLab not configured, nothing recorded).
    deployments: DeploymentTrail | None = None

    @property
    def store(self) -> RolloutStore:
        return RolloutStore(self.state_dir)

    @property
    def approvals(self) -> ApprovalStore:
        return ApprovalStore(self.state_dir)


@dataclass(frozen=True)
class RolloutRequest:
    """One rollout to start (:func:`pipeline.rollout.start_rollout`): ``release`` to the context's environment.

    ``approve`` names the approvers given with ``--approve`` (checked through GitLab); ``on_plan`` is called
    with the saved plan before the first batch (the CLI prints it); ``override_freeze`` is the journaled reason
    to roll out inside a freeze window; ``merge_request`` (the release's provenance: the MR that brought
    ``commit``) is journaled as the first link of the chain.
    """

    context: RolloutContext
    release: str
    commit: str | None = None
    approve: Sequence[str] = ()
    no_rollback: bool = False
    on_plan: Callable[[Plan], None] | None = None
    override_freeze: str | None = None
    merge_request: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "approve", tuple(self.approve))  # frozen all the way down


@dataclass(frozen=True)
class RolloutResult:
    """How a rollout (or rollback run) ended. ``report_path`` is the report.json in the state directory."""

    plan: Plan
    progress: Progress
    outcome: Outcome
    report_path: Path

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCEEDED
