"""One step of a batch: publish its job, collect every target's return, recover lost ones, journal each result.

Contract (:class:`StepRunner`):

* :meth:`StepRunner.run_chain` gives every target a result for every step it is asked for. Steps not yet
  published go out as ONE job (a multi-function job when there are several); a step whose job was journaled as
  published (a resume after a crash) is collected by its jid instead of being published again.
* A target without a return after ``Recovery.job_timeout`` is looked up in rounds (the MoM's job cache, its
  syndic's job cache, ``saltutil.find_job``), ``Recovery.interval`` apart, up to ``Recovery.retries`` rounds,
  before it is recorded missing; while ``find_job`` says it still runs the job the rounds start over (up to
  ``Recovery.max_wait``). Rollback steps only: a job lost on the way is published once more before that.
* Each return is judged once per step (:func:`pipeline.rollout.judge.judge_return`) and journaled as a
  ``minion_result``; the journal is fsynced once per round of returns, before anything acts on them.

The poll loop itself is :func:`pipeline.salt_client.polling.poll_returns`, shared with every other stage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from dataclasses import dataclass
from typing import Any

from pipeline.config import Environment
from pipeline.rollout.journal import Journal, Progress
from pipeline.rollout.judge import judge_return
from pipeline.rollout.model import ROLLBACK_STEPS, Plan, RolloutStateError, Step, StepResult, StepStatus
from pipeline.salt_client.base import LookupUnavailable, MinionReturn, SaltClient
from pipeline.salt_client.polling import Clock, poll_returns


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


#: A step of a job: the step it journals as, the Salt function, its positional args.
Part = tuple[Step, str, tuple[Any, ...]]
Write = Callable[..., dict[str, Any]]


class StepRunner:
    """Runs the steps of one rollout's batches (see the module doc); ``write`` journals a record (and keeps
    ``progress`` equal to what a replay of the journal would give)."""

    def __init__(self, *, client: SaltClient, clock: Clock, recovery: Recovery, env: Environment, plan: Plan,
                 progress: Progress, journal: Journal, write: Write) -> None:
        self.client = client
        self.clock = clock
        self.recovery = recovery
        self.env = env
        self.plan = plan
        self.progress = progress
        self.journal = journal
        self.write = write

    def run_step(
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
        return self.run_chain(batch, [(step, fun, tuple(arg))], targets, kwarg=kwarg, health=health)[step]

    def run_chain(
        self,
        batch: int,
        parts: Sequence[Part],
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
                self.write("step_finished", batch=batch, step=st.value, **count_results(bp.step(st)))
            todo_parts = [p for p in todo_parts if p not in group]
        return {st: bp.step(st).results for st, _, _ in parts}

    def _record(
        self,
        batch: int,
        parts: Sequence[Part],
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
        parts: Sequence[Part],
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
            poll_returns(self.client, jid, pending, deadline=deadline, poll_interval=rec.poll_interval, clock=clock,
                         take=take)

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


def count_results(sp: Any) -> dict[str, int]:
    """A step's results counted by status (the ``step_finished`` record's fields)."""
    statuses = [r.status for r in sp.results.values()]
    return {
        "ok": sum(1 for s in statuses if s is StepStatus.OK),
        "failed": sum(1 for s in statuses if s is StepStatus.FAILED),
        "missing": sum(1 for s in statuses if s is StepStatus.MISSING),
    }


def _age_seconds(at: str | None) -> float:
    """Seconds since a journal timestamp; infinite when unknown (an old journal: nothing left to wait for)."""
    if not at:
        return float("inf")
    try:
        then = datetime.fromisoformat(at)
    except ValueError:
        return float("inf")
    return max(0.0, (datetime.now(timezone.utc) - then).total_seconds())


def _republishable(
    parts: Sequence[Part], kwarg: Mapping[str, Any] | None
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
