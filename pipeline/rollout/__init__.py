"""Canary-first rollout in gated batches, with lost-return recovery, halt, rollback and promotion.

* :mod:`.planner` - the target resolved to minions, the canary and the schedule, the saved :class:`Plan`;
* :mod:`.judge` - one minion's return judged (failed states, retcodes, render errors), a batch's gate;
* :mod:`.entry` - the stage's entry points: :func:`start_rollout`, :func:`resume_rollout`,
  :func:`rollback_environment` (lock, checks, plan);
* :mod:`.context` - what a rollout is given (:class:`RolloutContext`, :class:`RolloutRequest`) and returns;
* :mod:`.machine` - the batch state machine: gate, bake, health, halt, rollback, promotion, reconcile;
* :mod:`.steps` - one step: publish its job, collect the returns, look up lost ones (:class:`Recovery`), journal
  each result;
* :mod:`.health` - the health check (a Salt function or an HTTP GET per minion);
* :mod:`.journal` - the durable JSON-lines journal, the state-directory layout, replay for resume;
* :mod:`.promotion` - the environment's ``requires`` and approvals;
* :mod:`.serving` - what the rollout needs from the sync stage (:class:`ReleaseServing`) and its adapter.

See docs/rollout.md for the schedule arithmetic, the gate table and the journal format.
"""

from pipeline.rollout.context import RolloutContext, RolloutRequest, RolloutResult
from pipeline.rollout.entry import resume_rollout, rollback_environment, start_rollout, unfinished_rollout
from pipeline.rollout.journal import Progress, RolloutStore, load_progress, replay
from pipeline.rollout.judge import Verdict, decide_gate, judge_return
from pipeline.rollout.model import (
    GateDecision,
    JournalError,
    MinionResult,
    Outcome,
    Plan,
    PlanError,
    PlannedBatch,
    PromotionRefused,
    RolloutError,
    RolloutStateError,
    Step,
    StepResult,
    StepStatus,
)
from pipeline.rollout.planner import build_plan, describe_plan, schedule
from pipeline.rollout.promotion import Approval, ApprovalStore, PromotionCheck, check_promotion
from pipeline.rollout.serving import ReleaseServing, SyncServing
from pipeline.rollout.steps import Recovery

__all__ = [
    "Approval",
    "ApprovalStore",
    "GateDecision",
    "JournalError",
    "MinionResult",
    "Outcome",
    "Plan",
    "PlanError",
    "PlannedBatch",
    "Progress",
    "PromotionCheck",
    "PromotionRefused",
    "Recovery",
    "ReleaseServing",
    "RolloutContext",
    "RolloutError",
    "RolloutRequest",
    "RolloutResult",
    "RolloutStateError",
    "RolloutStore",
    "Step",
    "StepResult",
    "StepStatus",
    "SyncServing",
    "Verdict",
    "build_plan",
    "check_promotion",
    "decide_gate",
    "describe_plan",
    "judge_return",
    "load_progress",
    "replay",
    "resume_rollout",
    "rollback_environment",
    "schedule",
    "start_rollout",
    "unfinished_rollout",
]
