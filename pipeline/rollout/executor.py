"""The rollout stage: plan, then run batch after batch, judge every minion, halt, roll back, promote.

Composition (each piece can be read on its own)::

    start_rollout:  lock -> promotion rules -> expose + attest the release -> resolve the target -> plan (saved)
    execute:        for each batch: sync_all -> state.apply -> gate -> bake -> health -> gate
                    passed all -> promote to base          failed gate -> halt -> roll back (unless --no-rollback)
    resume_rollout: lock -> replay the journal -> execute from where it stopped
    rollback_environment: lock -> roll back the unfinished rollout, or switch base back and re-apply it

Contracts:

* Every job is published to the batch's explicit minion list (``tgt_type=list``) with ``saltenv=<release
  saltenv>``; no other minion is touched, and ``pillarenv`` is left alone.
* Each expected minion's return is judged (:mod:`pipeline.rollout.judge`). A minion that did not return within
  ``Recovery.job_timeout`` is looked up - the MoM's job cache, its syndic's job cache, ``saltutil.find_job`` -
  up to ``Recovery.retries`` rounds ``Recovery.interval`` apart before it counts as missing; while
  ``find_job`` says it still runs the job, the rounds start over (up to ``Recovery.max_wait``).
* Every decision and result is journaled (fsynced) before the next action, so :func:`resume_rollout` never
  re-runs a finished batch, and a step whose job was published before a crash is collected by its jid (from the
  job caches) instead of being published again.
* Infrastructure failures (the master unreachable, a sync failing) raise and leave the rollout resumable.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from pipeline.config import Canary, Environment, PipelineConfig, Size
from pipeline.errors import SaltpipeError
from pipeline.freeze import check_freeze, record_override
from pipeline.lock import EnvironmentLock
from pipeline.rollout.journal import (
    BatchProgress,
    Journal,
    Progress,
    RolloutStore,
    apply_record,
    load_progress,
    new_progress,
)
from pipeline.rollout.judge import decide_gate, judge_return
from pipeline.rollout.model import (
    FORWARD_STEPS,
    GateDecision,
    Outcome,
    Plan,
    PlanError,
    PlannedBatch,
    RolloutError,
    RELEASE_GRAIN,
    ROLLBACK_STEPS,
    RolloutStateError,
    Step,
    StepResult,
    StepStatus,
)
from pipeline.rollout.planner import build_plan, check_top_file, new_rollout_id
from pipeline.rollout.approvals import GitLabApprovals, check_approvals
from pipeline.rollout.audit import DeploymentTrail, open_deployment, release_commit
from pipeline.rollout.promotion import ApprovalStore
from pipeline.rollout.serving import ReleaseServing
from pipeline.salt_client.base import LookupUnavailable, MinionReturn, Resolution, SaltClient

# ----------------------------------------------------------------------------------------------------------------
# Context


@dataclass(frozen=True)
class Recovery:
    """How long to wait for returns and how hard to look for lost ones (the seeds: retry 5, interval 10 s)."""

    job_timeout: float = 300.0
    poll_interval: float = 1.0
    retries: int = 5
    interval: float = 10.0
    find_job_timeout: float = 10.0
    max_wait: float = 3600.0
    resolve_timeout: float = 30.0


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


HttpGet = Callable[[str, float], int]


def _age_seconds(at: str | None) -> float:
    """Seconds since a journal timestamp; infinite when unknown (an old journal: nothing left to wait for)."""
    if not at:
        return float("inf")
    try:
        then = datetime.fromisoformat(at)
    except ValueError:
        return float("inf")
    return max(0.0, (datetime.now(timezone.utc) - then).total_seconds())


def http_status(url: str, timeout: float) -> int:
    """GET ``url`` and return the HTTP status (an HTTP error status is returned, not raised)."""
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": "saltpipe-health-check"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - URL from reviewed config
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


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
class RolloutResult:
    """How a rollout (or rollback run) ended. ``report_path`` is the report.json in the state directory."""

    plan: Plan
    progress: Progress
    outcome: Outcome
    report_path: Path

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCEEDED


# ----------------------------------------------------------------------------------------------------------------
# Entry points


def _lock(ctx: RolloutContext, operation: str) -> EnvironmentLock:
    lock = EnvironmentLock(ctx.state_dir, ctx.environment.name, operation)
    lock.acquire()  # LockError naming the holder if another sync or rollout runs
    return lock


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def start_rollout(
    ctx: RolloutContext,
    release: str,
    *,
    commit: str | None = None,
    approve: Sequence[str] = (),
    no_rollback: bool = False,
    on_plan: Callable[[Plan], None] | None = None,
    override_freeze: str | None = None,
    merge_request: Mapping[str, Any] | None = None,
) -> RolloutResult:
    """Check, plan and run a rollout of ``release`` to the context's environment (holding its lock throughout).

    ``on_plan`` is called with the saved plan before the first batch (the CLI prints it). Inside a freeze window
    of the environment the rollout is refused (:class:`~pipeline.freeze.FreezeRefused`, before anything is
    planned) unless ``override_freeze`` gives a reason, which is journaled (``freeze_overridden``).
    ``merge_request`` (the release's provenance: the MR that brought ``commit``) is journaled as the first link
    of the chain.
    """
    env = ctx.environment
    lock = _lock(ctx, "rollout")
    try:
        store = ctx.store
        unfinished = store.current(env.name)
        if unfinished:
            raise RolloutStateError(
                f"rollout {unfinished} of {env.name} is unfinished",
                hint=f"continue it with `saltpipe rollout resume {env.name}` or undo it with `saltpipe rollback {env.name}`",
            )
        freeze = check_freeze(env.name, env.freeze, action="rollout", override=override_freeze)
        check = check_approvals(ctx.authority, ctx.config, env, release, approve, store, ctx.approvals)
        plan = _plan_rollout(ctx, release, commit)
        deployment = open_deployment(ctx.deployments, env.name, commit)  # fails closed before any batch
        store.save_plan(plan)
        store.set_current(env.name, plan.rollout_id)
        executor = _Executor(ctx, plan, new_progress(plan))
        executor.write(
            "rollout_started",
            merge_request=dict(merge_request) if merge_request else None,
            kind=plan.kind,
            rollout_id=plan.rollout_id,
            environment=env.name,
            release=release,
            saltenv=plan.saltenv,
            previous_release=plan.previous_release,
            commit=commit,
            user=_user(),
            host=socket.gethostname(),
            population=plan.population,
            batches=[len(b.minions) for b in plan.batches],
            no_rollback=no_rollback,
            client=ctx.client.name,
        )
        executor.write("promotion_checked", **check.to_json())
        if freeze.overridden:
            override = record_override(ctx.state_dir, freeze, action="rollout", release=release)
            executor.write("freeze_overridden", **freeze.to_json(), by=override["by"])
        executor.write(**deployment)
        if on_plan:
            on_plan(plan)
        return executor.run()
    finally:
        lock.release()


def _plan_rollout(ctx: RolloutContext, release: str, commit: str | None) -> Plan:
    env = ctx.environment
    hc = env.gates.health_check
    if hc is not None and hc.function and hc.function not in ctx.client.allowed_functions:
        raise PlanError(
            f"the health check function {hc.function} of {env.name} is not allowed by the Salt client",
            hint="build the client with the environment's health check (the CLI does this)",
        )
    previous = ctx.serving.served_base(env)
    if previous == release:
        raise PlanError(
            f"base already serves {release} on the syndics of {env.name}: there is nothing to roll out canary-first",
            hint="a plain sync promoted it already; to re-apply it everywhere use `saltpipe rollback` / a new release",
        )
    saltenv = ctx.serving.saltenv_for(release)
    check_top_file(ctx.serving.top_file(release), release, saltenv)
    # Exposing (files to every syndic, then attestation through their fileservers) and resolving the target
    # (test.ping through the MoM) are independent; the plan needs both, so they run at the same time. The Salt
    # client stays on this thread (its event bus is bound to it); the sync is file copies and in-process
    # fileserver reads.
    with ThreadPoolExecutor(max_workers=1) as pool:
        exposing = pool.submit(ctx.serving.expose, env, release)
        try:
            resolution = ctx.client.resolve(
                env.target, timeout=ctx.recovery.resolve_timeout, syndics=[s.name for s in env.syndics]
            )
        finally:
            attested = exposing.result()  # its error wins: the release not served is the first thing to fix
    return build_plan(
        env,
        resolution,
        release=release,
        saltenv=saltenv,
        previous_release=previous,
        commit=commit,
        rollout_id=new_rollout_id(release),
        client_name=ctx.client.name,
        attested=attested,
    )


def unfinished_rollout(store: RolloutStore, environment: str) -> str:
    """The id of ``environment``'s unfinished rollout; a :class:`RolloutStateError` when there is none (the state
    directory only: the CLI asks this before it builds a Salt client or asks for credentials)."""
    rollout_id = store.current(environment)
    if not rollout_id:
        raise RolloutStateError(
            f"{environment} has no unfinished rollout to resume",
            hint=f"`saltpipe rollout status {environment}` shows the last one",
        )
    return rollout_id


def resume_rollout(ctx: RolloutContext, on_resume: Callable[[Plan], None] | None = None) -> RolloutResult:
    """Continue the environment's unfinished rollout from its journal (holding the lock).

    ``on_resume`` is called with its plan once the lock is held, before anything runs (the CLI says "resuming"
    there, so a refusal by the lock is never preceded by it)."""
    env = ctx.environment
    lock = _lock(ctx, "rollout resume")
    try:
        rollout_id = unfinished_rollout(ctx.store, env.name)
        progress = load_progress(ctx.store, env.name, rollout_id)
        if on_resume:
            on_resume(progress.plan)
        executor = _Executor(ctx, progress.plan, progress)
        executor.write("resumed", user=_user(), host=socket.gethostname(), state=progress.state())
        return executor.run()
    finally:
        lock.release()


def rollback_environment(ctx: RolloutContext, on_plan: Callable[[Plan], None] | None = None) -> RolloutResult:
    """Roll the environment back to the release before its last rollout (holding the lock).

    * An unfinished rollout is halted here and its touched minions are rolled back (base never changed).
    * A finished rollout that reached minions (succeeded, or halted with ``--no-rollback``) gets a *rollback run*:
      ``base`` is switched back to the previous release if needed, then applied - canary first, in batches, with
      the same gates - to the minions that rollout reached. Refused when there is nothing to roll back.

    ``on_plan`` is called with the plan being rolled back (or the new rollback run's plan) before anything runs.
    """
    env = ctx.environment
    lock = _lock(ctx, "rollback")
    try:
        store = ctx.store
        current = store.current(env.name)
        if current:
            progress = load_progress(store, env.name, current)
            if progress.promoted and progress.plan.kind == "rollout":
                raise RolloutStateError(
                    f"rollout {current} of {env.name} already promoted {progress.plan.release} to base",
                    hint=f"finish it with `saltpipe rollout resume {env.name}`, then `saltpipe rollback {env.name}` "
                         "switches base back and re-applies the previous release",
                )
            if on_plan:
                on_plan(progress.plan)
            executor = _Executor(ctx, progress.plan, progress)
            if not progress.halted:
                executor.write("halted", batch=None, reason="rollback requested by the operator", by=_user())
            if progress.no_rollback:
                # The operator asks for it now; --no-rollback only meant "not automatically".
                executor.write("rollback_requested", by=_user())
            return executor.run(force_rollback=True)
        history = store.history(env.name)
        if not history:
            raise RolloutStateError(f"{env.name} has no rollout to roll back", hint="nothing was changed")
        last = history[-1]
        last_plan = store.load_plan(env.name, str(last["rollout_id"]))
        last_progress = load_progress(store, env.name, last_plan.rollout_id)
        reached = _reached(last_progress, last.get("outcome") == Outcome.SUCCEEDED.value)
        if last_plan.kind == "rollback" or not reached or last.get("outcome") == Outcome.ROLLED_BACK.value:
            raise RolloutStateError(
                f"the last rollout of {env.name} ({last_plan.rollout_id}, {last.get('outcome')}) left nothing to roll back",
                hint="every minion it touched was rolled back already",
            )
        target = last_plan.previous_release
        if not target:
            raise RolloutStateError(
                f"rollout {last_plan.rollout_id} had no previous release to return to (the first release of {env.name})",
                hint="roll forward with a fixed release instead",
            )
        plan = _plan_rollback_run(ctx, last_plan, reached, target)
        deployment = open_deployment(ctx.deployments, env.name, release_commit(ctx.state_dir, target))
        store.save_plan(plan)
        store.set_current(env.name, plan.rollout_id)
        executor = _Executor(ctx, plan, new_progress(plan))
        executor.write(
            "rollout_started",
            kind="rollback",
            rollout_id=plan.rollout_id,
            rolls_back=last_plan.rollout_id,
            environment=env.name,
            release=target,
            saltenv="base",
            previous_release=last_plan.release,
            commit=None,
            user=_user(),
            host=socket.gethostname(),
            population=plan.population,
            batches=[len(b.minions) for b in plan.batches],
            no_rollback=True,
            client=ctx.client.name,
        )
        executor.write(**deployment)
        if on_plan:
            on_plan(plan)
        return executor.run()
    finally:
        lock.release()


def _reached(progress: Progress, promoted: bool) -> list[str]:
    """Minions a finished rollout left on its release: all of them once promoted, else those it touched and did
    not roll back."""
    if promoted:
        return list(progress.plan.minions)
    out = []
    for bp, planned in zip(progress.batches, progress.plan.batches):
        rolled = {m for m, r in bp.step(Step.ROLLBACK_APPLY).results.items() if r.status is StepStatus.OK}
        out += [m for m in _touched(bp, planned) if m not in rolled]
    return out


def _plan_rollback_run(ctx: RolloutContext, last: Plan, minions: Sequence[str], target: str) -> Plan:
    env = ctx.environment
    syndic_of = {m: last.syndic_of.get(m) for m in minions}
    canary_ids = tuple(m for m in env.canary.ids if m in syndic_of)
    canary = Canary(ids=canary_ids) if canary_ids else Canary(size=env.canary.size or Size(count=1))
    return build_plan(
        env.model_copy(update={"canary": canary}),
        Resolution(minions=syndic_of),
        release=target,
        saltenv="base",
        previous_release=last.release,
        commit=None,
        rollout_id=new_rollout_id(target),
        client_name=ctx.client.name,
        kind="rollback",
        rolls_back=last.rollout_id,
    )


def _touched(bp: BatchProgress, planned: PlannedBatch) -> list[str]:
    """Minions of a batch that a forward job was published to (so they may run the new release)."""
    sync = bp.steps.get(Step.SYNC)
    if sync is None:
        return []
    if sync.jid is not None:
        return list(sync.targets)
    # Published but the jid was never journaled (a crash inside publish): assume all of them were reached.
    return list(planned.minions) if sync.publishing else []


# ----------------------------------------------------------------------------------------------------------------
# The executor


class _Executor:
    def __init__(self, ctx: RolloutContext, plan: Plan, progress: Progress) -> None:
        self.ctx = ctx
        self.plan = plan
        self.progress = progress
        self.journal: Journal = ctx.store.journal(plan.environment, plan.rollout_id)
        self.env = ctx.environment
        self.client = ctx.client
        self.clock = ctx.clock
        self.recovery = ctx.recovery

    # -- journal ---------------------------------------------------------------------------------------------------

    def write(self, event: str, *, sync: bool = True, **fields: Any) -> dict[str, Any]:
        record = self.journal.write(event, sync=sync, **fields)
        # Keep the in-memory progress equal to what a replay of the file would give.
        apply_record(self.progress, record)
        if self.ctx.observer is not None:
            self.ctx.observer(record)
        if self.ctx.notifier is not None and event != "notify_failed":
            for failure in self.ctx.notifier.notify(record, self.plan):
                self.write("notify_failed", **failure)
        if self.ctx.deployments is not None:  # GitLab's deployment record follows the journal
            self.ctx.deployments.follow(record, self.progress.deployment, self.write)
        return record

    # -- the state machine -----------------------------------------------------------------------------------------

    def run(self, force_rollback: bool = False) -> RolloutResult:
        try:
            if self.progress.finished:
                return self._result()
            if not self.progress.halted:
                for planned in self.plan.batches:
                    bp = self.progress.batches[planned.index]
                    if bp.finished and bp.passed:
                        continue
                    # A batch journaled as failed whose halt was not (killed in between) is not run again.
                    gate = self._gate(planned) if bp.finished else self._run_batch(planned, bp)
                    if not gate.passed:
                        self.write("halted", batch=planned.index, reason=gate.describe(), gate=gate.to_json())
                        break
            if self.progress.halted:
                return self._after_halt(force_rollback)
            if self.plan.kind == "rollout" and not self.progress.promoted:
                self.write("promoting", release=self.plan.release, syndics=[s.name for s in self.env.syndics])
                self.ctx.serving.promote(self.env, self.plan.release)
                self.write("promoted", release=self.plan.release, base=self.plan.release)
            return self._finish(Outcome.SUCCEEDED)
        except SaltpipeError as exc:
            # Infrastructure failure: journal it and leave the rollout resumable.
            self.write("error", error=type(exc).__name__, message=exc.message, hint=exc.hint)
            raise
        finally:
            self.journal.close()

    def _after_halt(self, force_rollback: bool) -> RolloutResult:
        p = self.progress
        if self.plan.kind == "rollout" and not p.retired:
            # First of all, before rolling back: a forward job still queued for a syndic that stopped answering
            # (SIGSTOP, a partition) reaches its minions when the syndic resumes; with the release's saltenv gone
            # it applies nothing (no top file matches) instead of the release the rollout just halted.
            self._retire_canary()
        if p.rollback_finished:
            return self._finish_halted(_rollback_outcome(p.rollback_finished))
        if p.rollback_skipped and not force_rollback:
            return self._finish_halted(Outcome.HALTED)
        reason = None
        if self.plan.kind == "rollback":
            reason = "a rollback run is not itself rolled back; fix the cause and run `saltpipe rollback` again"
        elif p.no_rollback and not force_rollback:
            reason = "--no-rollback: the minions of the failed and earlier batches keep the new release"
        elif not self.plan.previous_release:
            reason = "base served no release before this rollout (first release of the environment): nothing to roll back to"
        if reason and not p.rollback_started:
            self.write("rollback_skipped", reason=reason)
            return self._finish_halted(Outcome.HALTED)
        return self._rollback()

    def _finish_halted(self, outcome: Outcome) -> RolloutResult:
        if self.progress.reconciled is None and not self.progress.finished:
            self._reconcile()
        return self._finish(outcome)

    def _reconcile(self) -> None:
        """After a halt, ask every minion the rollout touched which release it runs (the grain
        :data:`RELEASE_GRAIN` that the release's highstate records, docs/rollout.md) and journal the answers:
        the journal's results say what saltpipe saw, this says what the minions hold - a late job, a return lost
        both ways. One ``grains.item`` job; a minion that does not answer within the job timeout is listed as
        unanswered (nothing is looked up: this is a report, not a gate)."""
        minions = sorted({m for planned in self.plan.batches
                          for m in _touched(self.progress.batches[planned.index], planned)})
        if not minions:
            return
        pub = self.client.publish(minions, "grains.item", [RELEASE_GRAIN])
        deadline = self.clock.monotonic() + self.recovery.job_timeout
        got: dict[str, MinionReturn] = {}
        while True:
            got.update({m: r for m, r in self.client.returns(pub.jid).items() if m in set(minions)})
            if len(got) >= len(minions) or self.clock.monotonic() >= deadline:
                break
            self.client.wait(min(self.recovery.poll_interval, max(0.0, deadline - self.clock.monotonic())),
                             self.clock.sleep)
        releases = {}
        for minion, ret in sorted(got.items()):
            value = ret.ret.get(RELEASE_GRAIN) if isinstance(ret.ret, Mapping) else None
            releases[minion] = value if isinstance(value, str) and value else None
        self.write("reconciled", jid=pub.jid, grain=RELEASE_GRAIN, releases=releases,
                   unanswered=[m for m in minions if m not in got])

    def _finish(self, outcome: Outcome) -> RolloutResult:
        from pipeline.report import build_report, release_commits, write_json

        if self.plan.kind == "rollout" and not self.progress.retired:
            self._retire_canary()
        if not self.progress.finished:
            self.write("rollout_finished", outcome=outcome.value, **_summary(self.progress))
        store = self.ctx.store
        report_path = store.report_path(self.plan.environment, self.plan.rollout_id)
        commits = release_commits(store.root.parent, [self.plan.previous_release])  # store.root: <state_dir>/rollouts
        write_json(build_report(self.progress, commits), report_path)
        if store.current(self.plan.environment) == self.plan.rollout_id:
            started = (self.progress.started or {}).get("at")
            store.record_finished(self.plan, outcome, started, str((self.progress.finished or {}).get("at")))
            store.set_current(self.plan.environment, None)
        return RolloutResult(self.plan, self.progress, outcome, report_path)

    def _retire_canary(self) -> None:
        """Remove the release's canary saltenv from the syndics once the rollout is over, whatever the outcome:
        promotion made it ``base``; a rollback and every later highstate use ``base``; a halted rollout is undone
        with ``base`` too. Without this, every rollout would leave a link that keeps its release on the syndics
        beyond ``release.keep``. A failure is journaled as a warning and does not change the outcome."""
        saltenv = self.plan.saltenv
        try:
            self.ctx.serving.retire(self.env, self.plan.release)
        except SaltpipeError as exc:
            hint = exc.hint or f"remove it with `saltpipe sync {self.env.name} --remove-canary {self.plan.release}`"
            self.write("canary_retire_failed", saltenv=saltenv, message=exc.message, hint=hint)
            return
        self.write("canary_retired", saltenv=saltenv, syndics=[s.name for s in self.env.syndics])

    def _result(self) -> RolloutResult:
        outcome = self.progress.outcome or Outcome.HALTED
        return self._finish(outcome)

    # -- one batch -------------------------------------------------------------------------------------------------

    def _run_batch(self, planned: PlannedBatch, bp: BatchProgress) -> GateDecision:
        if not bp.started:
            self.write("batch_started", batch=planned.index, name=planned.name, size=len(planned.minions))
            bp = self.progress.batches[planned.index]
        saltenv = self.plan.saltenv
        if self.plan.kind == "rollback" and planned.index == 0 and not self.progress.promoted:
            self._switch_base_back()
        # saltutil.sync_all then state.apply, as one multi-function job per batch (see _run_chain).
        self._run_chain(
            planned.index,
            [(Step.SYNC, "saltutil.sync_all", ()), (Step.APPLY, "state.apply", ())],
            planned.minions,
            kwarg={"saltenv": saltenv},
        )
        gate = self._gate(planned)
        hc = self.env.gates.health_check
        bake = float(self.env.gates.bake_seconds)
        if gate.passed and bake > 0:
            self._bake(planned, bake)
        if gate.passed and hc is not None:
            healthy = [m for m in planned.minions if self._forward_status(planned.index, m) is StepStatus.OK]
            if hc.function:
                self._run_step(planned.index, Step.HEALTH, healthy, hc.function, arg=hc.args, health=True)
            else:
                self._http_health(planned.index, healthy)
            gate = self._gate(planned)
        self.write("gate", **gate.to_json())
        self.write("batch_finished", batch=planned.index, passed=gate.passed)
        return gate

    def _switch_base_back(self) -> None:
        served = self.ctx.serving.served_base(self.env)
        if served != self.plan.release:
            self.write("promoting", release=self.plan.release, syndics=[s.name for s in self.env.syndics], rollback=True)
            self.ctx.serving.promote(self.env, self.plan.release)
        self.write("promoted", release=self.plan.release, base=self.plan.release, rollback=True)

    def _forward_status(self, batch: int, minion: str) -> StepStatus | None:
        """A minion's status over the steps that ran for it: failed wins over missing wins over ok."""
        bp = self.progress.batches[batch]
        statuses = [bp.steps[s].results[minion].status for s in (*FORWARD_STEPS, Step.HEALTH)
                    if s in bp.steps and minion in bp.steps[s].results]
        if not statuses:
            return None
        if StepStatus.FAILED in statuses:
            return StepStatus.FAILED
        if StepStatus.MISSING in statuses:
            return StepStatus.MISSING
        return StepStatus.OK

    def _gate(self, planned: PlannedBatch) -> GateDecision:
        failed = missing = 0
        for minion in planned.minions:
            status = self._forward_status(planned.index, minion)
            if status is StepStatus.FAILED:
                failed += 1
            elif status is StepStatus.MISSING or status is None:
                missing += 1
        health = self.progress.batches[planned.index].steps.get(Step.HEALTH)
        health_failed = sum(1 for r in health.results.values() if r.status is not StepStatus.OK) if health else 0
        return decide_gate(planned.index, len(planned.minions), failed, missing, self.plan.gates, health_failed)

    def _bake(self, planned: PlannedBatch, seconds: float) -> None:
        bp = self.progress.batches[planned.index]
        if bp.baked:
            return
        remaining = seconds
        if bp.bake_started_at:
            # Resumed mid-bake: only the rest of the bake time (wall clock from the journal).
            began = datetime.fromisoformat(bp.bake_started_at)
            remaining = max(0.0, seconds - (datetime.now(timezone.utc) - began).total_seconds())
        else:
            self.write("bake_started", batch=planned.index, seconds=seconds)
        self.clock.sleep(remaining)
        self.write("bake_finished", batch=planned.index, seconds=seconds)

    # -- one step: publish, collect, recover ---------------------------------------------------------------------

    def _run_step(
        self,
        batch: int,
        step: Step,
        targets: Sequence[str],
        fun: str,
        *,
        arg: Sequence[Any] = (),
        kwarg: Mapping[str, Any] | None = None,
        health: bool = False,
    ) -> dict[str, StepResult]:
        """One step as a job of its own (the health check)."""
        return self._run_chain(batch, [(step, fun, tuple(arg))], targets, kwarg=kwarg, health=health)[step]

    def _run_chain(
        self,
        batch: int,
        parts: Sequence[tuple[Step, str, tuple[Any, ...]]],
        targets: Sequence[str],
        *,
        kwarg: Mapping[str, Any] | None = None,
        health: bool = False,
    ) -> dict[Step, dict[str, StepResult]]:
        """Run the steps ``parts`` (step, function, args; in order) on ``targets``; every step gets a result
        per target. Steps not yet published go out as ONE job (a multi-function job when there are several:
        one publish and one return per minion - Salt runs each function even when an earlier one failed, and
        the judge sees each function's own return). A journaled job (resumed after a crash) is collected by
        its jid from the job caches instead of being published again."""
        bp = self.progress.batches[batch]
        todo_parts = [p for p in parts if not bp.step(p[0]).finished]
        while todo_parts:
            head = bp.step(todo_parts[0][0])
            if head.jid is None:
                group = [p for p in todo_parts if bp.step(p[0]).jid is None]
                todo = [m for m in targets if any(m not in bp.step(st).results for st, _, _ in group)]
                if todo:
                    funs = [fun for _, fun, _ in group]
                    for st, fun, _ in group:
                        self.write("step_publishing", batch=batch, step=st.value, fun=fun, count=len(todo))
                    if len(group) == 1:
                        pub = self.client.publish(todo, funs[0], group[0][2], kwarg)
                    else:
                        pub = self.client.publish_chain(todo, [(fun, a, dict(kwarg or {})) for _, fun, a in group])
                    for st, fun, a in group:
                        self.write(
                            "step_published", batch=batch, step=st.value, jid=pub.jid, fun=fun, arg=list(a),
                            kwarg=dict(kwarg or {}), targets=list(todo),
                            **({"job": funs} if len(group) > 1 else {}),
                        )
                    self._collect(batch, group, funs, pub.jid, todo, fresh=True, health=health,
                                  republish=_republishable(group, kwarg))
            else:
                # Resumed after a crash: the job was published; its returns went to the dead process. Collect
                # them by jid from the job caches (and find_job) instead of running the job again.
                # The functions of the dead process's job: a step of it whose own "step_published" was not
                # written before the crash was still published with it (never publish it a second time).
                job = list(head.job) or [todo_parts[0][1]]
                group = [p for p in todo_parts if bp.step(p[0]).jid == head.jid
                         or (bp.step(p[0]).jid is None and len(job) > 1 and p[1] in job)]
                todo = [m for m in head.targets if any(m not in bp.step(st).results for st, _, _ in group)]
                stray = [m for m in targets if m not in set(head.targets)
                         and any(m not in bp.step(st).results for st, _, _ in group)]
                if stray:
                    raise RolloutStateError(
                        f"journal: step {'+'.join(st.value for st, _, _ in group)} of batch {batch} has results "
                        f"pending for minions it was not published to ({', '.join(stray[:5])})",
                        hint="the journal was edited; restore it",
                    )
                if todo:
                    self._collect(
                        batch, group, job, head.jid, todo, fresh=False, health=health,
                        wait=self.recovery.job_timeout - _age_seconds(head.published_at),
                        republish=_republishable(group, kwarg),
                    )
            for st, _, _ in group:
                self.write("step_finished", batch=batch, step=st.value, **_count(bp.step(st)))
            todo_parts = [p for p in todo_parts if p not in group]
        return {st: bp.step(st).results for st, _, _ in parts}

    def _record(
        self,
        batch: int,
        parts: Sequence[tuple[Step, str, tuple[Any, ...]]],
        job: Sequence[str],
        ret: MinionReturn,
        elapsed: float | None,
        health: bool,
    ) -> None:
        """Judge ``ret`` once per step of ``parts``; ``job`` lists the functions of the job it returns."""
        done = self.progress.batches[batch]
        for step, fun, _ in parts:
            if ret.minion in done.step(step).results:
                continue  # recorded before a crash (the parts of one return are written one after the other)
            own = ret.part(fun, list(job).index(fun)) if len(job) > 1 else ret
            verdict = judge_return(fun, own, health=health)
            result = StepResult(
                minion=ret.minion,
                step=step,
                status=StepStatus.OK if verdict.ok else StepStatus.FAILED,
                jid=ret.jid,
                retcode=own.retcode,
                reasons=verdict.reasons,
                source=ret.source,
                duration_ms=verdict.duration_ms,
                changes=verdict.changes,
                elapsed_s=elapsed,
                files=_files_kept(step, verdict),
                states=verdict.states,
                output=verdict.output,
            )
            self.write("minion_result", sync=False, batch=batch, **result.to_json())

    def _syndics_to_ask(self, minions: Sequence[str]) -> list[str]:
        syndics = {self.plan.syndic_of.get(m) for m in minions}
        if None in syndics:
            # Unknown (or direct) attachment: any syndic of the environment may hold the return.
            return [s.name for s in self.env.syndics]
        return sorted(s for s in syndics if s)

    def _collect(
        self,
        batch: int,
        parts: Sequence[tuple[Step, str, tuple[Any, ...]]],
        job: Sequence[str],
        jid: str,
        todo: Sequence[str],
        *,
        fresh: bool,
        health: bool,
        wait: float = 0.0,
        republish: Mapping[str, Any] | None = None,
    ) -> None:
        """Record each of ``todo``'s returns for ``jid``, one result per step of ``parts`` (``job``: the functions
        of the job, in order); a minion still without one after the lookup rounds is recorded missing.
        ``fresh``: the job was just published here, so wait up to the job timeout for returns first. ``wait``
        (resume): how much of the job timeout is left since the dead process published it - a job published just
        before the crash may not even have reached its minions yet, so it is waited for like a fresh one before
        anything is counted missing. ``republish`` (the job's kwargs; rollback steps only): a minion still without
        a return after the rounds, and not running the job, gets the job once more (a new jid, journaled as
        ``step_republished``) before it counts as missing - a syndic that stopped while the rollback was
        published never forwards it, and Salt does not publish it again when the syndic comes back."""
        pending = set(todo)
        step = parts[0][0]  # names the job in lookup records
        rec = self.recovery
        clock = self.clock
        t0 = clock.monotonic()

        def take(found: Mapping[str, MinionReturn]) -> list[str]:
            got = []
            for minion in sorted(found):
                if minion in pending:
                    pending.discard(minion)
                    got.append(minion)
                    self._record(batch, parts, job, found[minion], clock.monotonic() - t0 if fresh else None, health)
            if got:
                self.journal.sync()  # one fsync per round of returns, before anything acts on them
            return got

        def poll_until(deadline: float) -> None:
            while pending:
                take(self.client.returns(jid))
                if not pending or clock.monotonic() >= deadline:
                    return
                self.client.wait(min(rec.poll_interval, max(0.0, deadline - clock.monotonic())), clock.sleep)

        if fresh:
            poll_until(t0 + rec.job_timeout)
        elif wait > 0:
            # Returns delivered before the resume are in the job caches; take them, then wait for the rest.
            take(self._lookup(batch, step, jid, None, sorted(pending), 0))
            poll_until(t0 + wait)
        attempt = 0
        give_up_at = clock.monotonic() + rec.max_wait
        notes: dict[str, list[str]] = {}
        while pending and attempt < rec.retries:
            attempt += 1
            asked = sorted(pending)
            found = self._lookup(batch, step, jid, None, asked, attempt)
            take(found)
            for syndic in self._syndics_to_ask(sorted(pending)) if pending else ():
                take(self._lookup(batch, step, jid, syndic, sorted(pending), attempt))
            if not pending:
                break
            running = self.client.find_job(sorted(pending), jid, timeout=rec.find_job_timeout)
            running_ids = sorted(m for m in running if m in pending)
            self.write(
                "lookup", batch=batch, step=step.value, jid=jid, attempt=attempt, method="find_job",
                asked=sorted(pending), running=running_ids,
            )
            for minion in pending:
                notes.setdefault(minion, []).append(
                    f"round {attempt}: " + ("still running the job" if minion in running_ids else "not running the job")
                )
            if running_ids and clock.monotonic() < give_up_at:
                # Not lost: still working. Keep waiting without spending retries (bounded by max_wait).
                attempt = 0
            poll_until(min(clock.monotonic() + rec.interval, give_up_at) if attempt == 0 else clock.monotonic() + rec.interval)
        done = self.progress.batches[batch]
        if pending and republish is not None:
            again = sorted(pending)
            funs = [fun for _, fun, _ in parts]
            if len(parts) == 1:
                pub = self.client.publish(again, funs[0], parts[0][2], republish)
            else:
                pub = self.client.publish_chain(again, [(fun, a, dict(republish)) for _, fun, a in parts])
            self.write("step_republished", batch=batch, steps=[st.value for st, _, _ in parts], jid=pub.jid,
                       replaces=jid, fun=funs, kwarg=dict(republish), targets=again)
            # Collected like a fresh job (its own missing results, if it is lost too); never re-published twice.
            self._collect(batch, parts, funs, pub.jid, again, fresh=True, health=health)
            pending = {m for m in pending if any(m not in done.step(st).results for st, _, _ in parts)}
        for minion in sorted(pending):
            for part_step, _, _ in parts:
                if minion in done.step(part_step).results:
                    continue
                result = StepResult(
                    minion=minion,
                    step=part_step,
                    status=StepStatus.MISSING,
                    jid=jid,
                    reasons=(
                        f"no return for {jid} after {rec.retries} lookup round(s) (MoM job cache, syndic job "
                        f"cache, saltutil.find_job)",
                        *(notes.get(minion, [])[-3:]),
                    ),
                )
                self.write("minion_result", sync=False, batch=batch, **result.to_json())
        self.journal.sync()

    def _lookup(
        self, batch: int, step: Step, jid: str, syndic: str | None, asked: Sequence[str], attempt: int
    ) -> dict[str, MinionReturn]:
        method = "master_cache" if syndic is None else f"syndic_cache:{syndic}"
        try:
            found = self.client.lookup_job(jid, syndic=syndic)
        except LookupUnavailable as exc:
            self.write("lookup", batch=batch, step=step.value, jid=jid, attempt=attempt, method=method,
                       asked=list(asked), unavailable=exc.message)
            return {}
        relevant = {m: r for m, r in found.items() if m in set(asked)}
        self.write("lookup", batch=batch, step=step.value, jid=jid, attempt=attempt, method=method,
                   asked=list(asked), found=sorted(relevant))
        return relevant

    # -- HTTP health -----------------------------------------------------------------------------------------------

    def _http_health(self, batch: int, minions: Sequence[str]) -> None:
        hc = self.env.gates.health_check
        assert hc is not None and hc.url is not None
        sp = self.progress.batches[batch].step(Step.HEALTH)
        if sp.finished:
            return
        todo = [m for m in minions if m not in sp.results]
        hosts: dict[str, str] = {}
        if todo and "{host}" in hc.url:
            hosts = self._fqdns(todo)
        self.write("step_published", batch=batch, step=Step.HEALTH.value, jid="", fun="http", targets=list(todo),
                   arg=[hc.url], kwarg={})

        def probe(minion: str) -> StepResult:
            if "{host}" in hc.url and minion not in hosts:
                return StepResult(minion, Step.HEALTH, StepStatus.FAILED, None, reasons=("no fqdn grain: cannot build the URL",))
            url = hc.url.format(minion=minion, host=hosts.get(minion, minion))
            started = time.monotonic()
            try:
                status = self.ctx.http_get(url, hc.timeout_seconds)
            except (OSError, ValueError) as exc:
                return StepResult(minion, Step.HEALTH, StepStatus.FAILED, None, reasons=(f"GET {url}: {exc}",),
                                  elapsed_s=time.monotonic() - started)
            ok = status == hc.expect_status
            return StepResult(
                minion, Step.HEALTH, StepStatus.OK if ok else StepStatus.FAILED, None,
                reasons=() if ok else (f"GET {url}: HTTP {status}, expected {hc.expect_status}",),
                elapsed_s=time.monotonic() - started,
            )

        with ThreadPoolExecutor(max_workers=min(16, max(1, len(todo)))) as pool:
            results = list(pool.map(probe, todo))
        for result in results:
            self.write("minion_result", batch=batch, **result.to_json())
        self.write("step_finished", batch=batch, step=Step.HEALTH.value, **_count(sp))

    def _fqdns(self, minions: Sequence[str]) -> dict[str, str]:
        pub = self.client.publish(minions, "grains.item", ["fqdn"])
        deadline = self.clock.monotonic() + self.recovery.job_timeout
        got: dict[str, MinionReturn] = {}
        while self.clock.monotonic() < deadline:
            got = self.client.returns(pub.jid)
            if set(minions) <= set(got):
                break
            self.clock.sleep(self.recovery.poll_interval)
        out = {}
        for minion, ret in got.items():
            if isinstance(ret.ret, Mapping) and isinstance(ret.ret.get("fqdn"), str) and ret.ret["fqdn"]:
                out[minion] = ret.ret["fqdn"]
        return out

    # -- rollback --------------------------------------------------------------------------------------------------

    def _rollback(self) -> RolloutResult:
        touched_batches = [
            (planned, self.progress.batches[planned.index])
            for planned in self.plan.batches
            if self.progress.batches[planned.index].started
        ]
        if not self.progress.rollback_started:
            served = self.ctx.serving.served_base(self.env)
            if served != self.plan.previous_release:
                raise RolloutError(
                    f"cannot roll back: base on {self.env.name} serves {served or 'nothing'}, not the release this "
                    f"rollout started from ({self.plan.previous_release})",
                    hint="someone synced base meanwhile; sync the previous release back, then `saltpipe rollout resume`",
                )
            self.write(
                "rollback_started",
                release=self.plan.previous_release,
                saltenv="base",
                batches=[p.index for p, _ in reversed(touched_batches)],
                minions=sum(len(_touched(bp, p)) for p, bp in touched_batches),
            )
        failed: list[str] = []
        missing: list[str] = []
        rolled = 0
        # The failed batch first (it is the most likely to be broken), then back towards the canary.
        for planned, bp in reversed(touched_batches):
            targets = _touched(self.progress.batches[planned.index], planned)
            if not targets:
                continue
            back = self._run_chain(
                planned.index,
                [(Step.ROLLBACK_SYNC, "saltutil.sync_all", ()), (Step.ROLLBACK_APPLY, "state.apply", ())],
                targets,
                kwarg={"saltenv": "base"},
            )
            sync, applied = back[Step.ROLLBACK_SYNC], back[Step.ROLLBACK_APPLY]
            for minion in targets:
                status = sync[minion].status if sync[minion].status is not StepStatus.OK else applied[minion].status
                if status is StepStatus.OK:
                    rolled += 1
                elif status is StepStatus.FAILED:
                    failed.append(minion)
                else:
                    missing.append(minion)
        self.write("rollback_finished", rolled_back=rolled, failed=sorted(failed), missing=sorted(missing))
        return self._finish_halted(_rollback_outcome(self.progress.rollback_finished or {}))


def _republishable(
    parts: Sequence[tuple[Step, str, tuple[Any, ...]]], kwarg: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """The kwargs to publish a lost job with again, for rollback steps only: a forward step is never sent twice
    (a late forward job is what a halt must stop), a rollback is ``state.apply`` of base, idempotent."""
    return dict(kwarg or {}) if all(st in ROLLBACK_STEPS for st, _, _ in parts) else None


def _files_kept(step: Step, verdict: Any) -> tuple[str, ...]:
    """What a return's file states tell the rollback report: the files the forward apply changed, and every file
    the rollback's apply of the previous release manages (the difference stays behind on the minion)."""
    if step is Step.APPLY:
        return tuple(verdict.files_changed)
    if step is Step.ROLLBACK_APPLY:
        return tuple(verdict.files)
    return ()


def _rollback_outcome(finished: Mapping[str, Any]) -> Outcome:
    # Rolled back only if every touched minion is back on the previous release; otherwise say "halted" and the
    # report lists who is not.
    return Outcome.ROLLED_BACK if not finished.get("failed") and not finished.get("missing") else Outcome.HALTED


def _count(sp: Any) -> dict[str, int]:
    statuses = [r.status for r in sp.results.values()]
    return {
        "ok": sum(1 for s in statuses if s is StepStatus.OK),
        "failed": sum(1 for s in statuses if s is StepStatus.FAILED),
        "missing": sum(1 for s in statuses if s is StepStatus.MISSING),
    }


def _summary(progress: Progress) -> dict[str, Any]:
    ran = sum(1 for b in progress.batches if b.started)
    return {"batches_run": ran, "batches_planned": len(progress.batches)}
