"""The batch state machine of one rollout (or rollback run): batch after batch, gate, halt, roll back, promote.

Composition::

    run:    for each batch not yet passed: sync_all + state.apply (one job) -> gate -> bake -> health -> gate
            every batch passed -> promote: base := release on every syndic -> retire the canary saltenv
            a gate failed      -> halt -> retire the canary saltenv -> roll back (unless --no-rollback)
                                  -> reconcile (which release each touched minion holds)

Contract (:class:`RolloutMachine`):

* Every decision is journaled (fsynced) before the next action, and the in-memory :class:`Progress` is always
  what a replay of the journal gives, so :meth:`RolloutMachine.run` on a replayed progress (a resume) never
  re-runs a finished batch or a finished step.
* The gates (ratios, bake time, health check) are the plan's (:attr:`Plan.gates`): what was saved when the
  rollout started decides, never the live configuration; a plan saved without gates is refused
  (:class:`~pipeline.rollout.model.RolloutStateError`), never completed from the config.
* Infrastructure failures (:class:`~pipeline.errors.SaltpipeError`) are journaled as ``error`` and raised; the
  rollout stays resumable. Failed gates are data: the run returns a :class:`RolloutResult`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from pipeline.config import Gates
from pipeline.errors import SaltpipeError
from pipeline.rollout.context import RolloutContext, RolloutResult
from pipeline.rollout.health import check_health
from pipeline.rollout.journal import BatchProgress, Journal, Progress, apply_record
from pipeline.rollout.judge import decide_gate
from pipeline.rollout.model import (
    FORWARD_STEPS,
    RELEASE_GRAIN,
    GateDecision,
    Outcome,
    Plan,
    PlannedBatch,
    RolloutError,
    Step,
    StepStatus,
)
from pipeline.rollout.steps import StepRunner
from pipeline.salt_client.polling import collect_returns


class RolloutMachine:
    """Runs one saved plan from its progress (module doc); ``write`` is the only way anything is journaled."""

    def __init__(self, ctx: RolloutContext, plan: Plan, progress: Progress) -> None:
        self.ctx = ctx
        self.plan = plan
        self.progress = progress
        self.journal: Journal = ctx.store.journal(plan.environment, plan.rollout_id)
        self.env = ctx.environment
        self.client = ctx.client
        self.clock = ctx.clock
        self.recovery = ctx.recovery
        self.steps = StepRunner(client=ctx.client, clock=ctx.clock, recovery=ctx.recovery, env=ctx.environment,
                                plan=plan, progress=progress, journal=self.journal, write=self.write)
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
                          for m in touched(self.progress.batches[planned.index], planned)})
        if not minions:
            return
        pub = self.client.publish(minions, "grains.item", [RELEASE_GRAIN])
        got = collect_returns(self.client, pub.jid, minions, timeout=self.recovery.job_timeout,
                              poll_interval=self.recovery.poll_interval, clock=self.clock, look_in_cache=False)
        releases = {}
        for minion, ret in sorted(got.items()):
            value = ret.ret.get(RELEASE_GRAIN) if isinstance(ret.ret, Mapping) else None
            releases[minion] = value if isinstance(value, str) and value else None
        self.write("reconciled", jid=pub.jid, grain=RELEASE_GRAIN, releases=releases,
                   unanswered=[m for m in minions if m not in got])

    def _finish(self, outcome: Outcome) -> RolloutResult:
        from pipeline.rollout.report import build_report, release_commits, write_json

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
        self.steps.run_chain(
            planned.index,
            [(Step.SYNC, "saltutil.sync_all", ()), (Step.APPLY, "state.apply", ())],
            planned.minions,
            kwarg={"saltenv": saltenv},
        )
        gate = self._gate(planned)
        gates = self._gates()
        hc = gates.health_check
        bake = float(gates.bake_seconds)
        if gate.passed and bake > 0:
            self._bake(planned, bake)
        if gate.passed and hc is not None:
            healthy = [m for m in planned.minions if self._forward_status(planned.index, m) is StepStatus.OK]
            check_health(self.steps, hc, self.ctx.http_get, planned.index, healthy)
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
        return decide_gate(planned.index, len(planned.minions), failed, missing, self._gates(), health_failed)

    def _gates(self) -> Gates:
        # resume_rollout refuses a plan without gates before anything runs; a new plan always has them.
        return self.plan.require_gates()

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
                minions=sum(len(touched(bp, p)) for p, bp in touched_batches),
            )
        failed: list[str] = []
        missing: list[str] = []
        rolled = 0
        # The failed batch first (it is the most likely to be broken), then back towards the canary.
        for planned, bp in reversed(touched_batches):
            targets = touched(self.progress.batches[planned.index], planned)
            if not targets:
                continue
            back = self.steps.run_chain(
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


def touched(bp: BatchProgress, planned: PlannedBatch) -> list[str]:
    """Minions of a batch that a forward job was published to (so they may run the new release)."""
    sync = bp.steps.get(Step.SYNC)
    if sync is None:
        return []
    if sync.jid is not None:
        return list(sync.targets)
    # Published but the jid was never journaled (a crash inside publish): assume all of them were reached.
    return list(planned.minions) if sync.publishing else []


# ----------------------------------------------------------------------------------------------------------------


def _rollback_outcome(finished: Mapping[str, Any]) -> Outcome:
    # Rolled back only if every touched minion is back on the previous release; otherwise say "halted" and the
    # report lists who is not.
    return Outcome.ROLLED_BACK if not finished.get("failed") and not finished.get("missing") else Outcome.HALTED



def _summary(progress: Progress) -> dict[str, Any]:
    ran = sum(1 for b in progress.batches if b.started)
    return {"batches_run": ran, "batches_planned": len(progress.batches)}
