"""The rollout stage's entry points: :func:`start_rollout`, :func:`resume_rollout`, :func:`rollback_environment`.

Composition (each piece can be read on its own)::

    start_rollout:  lock -> promotion rules -> expose + attest the release || resolve the target -> plan (saved)
                    -> the batch state machine (:mod:`.machine`)
    resume_rollout: lock -> replay the journal -> the state machine from where it stopped
    rollback_environment: lock -> roll back the unfinished rollout, or plan a rollback run (base switched back and
                    re-applied, canary first) of the minions the last rollout reached

Contracts:

* Each entry point holds the environment's lock from before it reads the state directory until it returns.
* Every job is published to the batch's explicit minion list (``tgt_type=list``) with ``saltenv=<release
  saltenv>``; no other minion is touched, and ``pillarenv`` is left alone (:mod:`.steps`).
* Refusals (an unfinished rollout, the promotion rules, a freeze window, planning) raise before anything is
  touched; infrastructure failures raise and leave the rollout resumable.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pipeline.config import Canary, Gates, Size
from pipeline.freeze import check_freeze, record_override
from pipeline.lock import EnvironmentLock
from pipeline.rollout.approvals import check_approvals
from pipeline.rollout.audit import open_deployment, release_commit
from pipeline.rollout.context import RolloutContext, RolloutRequest, RolloutResult
from pipeline.rollout.journal import Progress, RolloutStore, load_progress, new_progress
from pipeline.rollout.machine import RolloutMachine, touched
from pipeline.rollout.model import Outcome, Plan, PlanError, RolloutStateError, Step, StepStatus
from pipeline.rollout.planner import build_plan, check_top_file, new_rollout_id
from pipeline.salt_client.base import Resolution


def _lock(ctx: RolloutContext, operation: str) -> EnvironmentLock:
    """The environment's lock, taken by ``with`` (LockError naming the holder if another sync or rollout runs)."""
    return EnvironmentLock(ctx.state_dir, ctx.environment.name, operation)


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


#: The plan's fields ``rollout_started`` repeats, so the journal alone tells what was started.
_STARTED_FROM_PLAN = ("kind", "rollout_id", "environment", "release", "saltenv", "previous_release", "commit",
                      "population")


def _begin(ctx: RolloutContext, plan: Plan, *, no_rollback: bool, **started: Any) -> RolloutMachine:
    """Save a new ``plan``, make it the environment's current rollout and open its journal with
    ``rollout_started`` (with ``started``'s fields besides the plan's): the first thing every new run does."""
    ctx.store.save_plan(plan)
    ctx.store.set_current(plan.environment, plan.rollout_id)
    executor = RolloutMachine(ctx, plan, new_progress(plan))
    of_plan = {name: getattr(plan, name) for name in _STARTED_FROM_PLAN}
    executor.write("rollout_started", **started, **of_plan, user=_user(), host=socket.gethostname(),
                   batches=[len(b.minions) for b in plan.batches], no_rollback=no_rollback, client=ctx.client.name)
    return executor


def start_rollout(request: RolloutRequest) -> RolloutResult:
    """Check, plan and run the rollout ``request`` asks for (holding the environment's lock throughout).

    Inside a freeze window of the environment the rollout is refused (:class:`~pipeline.freeze.FreezeRefused`,
    before anything is planned) unless ``request.override_freeze`` gives a reason, which is journaled
    (``freeze_overridden``). The request's fields: :class:`~pipeline.rollout.context.RolloutRequest`.
    """
    ctx, release, commit = request.context, request.release, request.commit
    env = ctx.environment
    with _lock(ctx, "rollout"):
        store = ctx.store
        unfinished = store.current(env.name)
        if unfinished:
            raise RolloutStateError(
                f"rollout {unfinished} of {env.name} is unfinished",
                hint=f"continue it with `saltpipe rollout resume {env.name}` or undo it with `saltpipe rollback {env.name}`",
            )
        freeze = check_freeze(env.name, env.freeze, action="rollout", override=request.override_freeze)
        check = check_approvals(ctx.authority, ctx.config, env, release, request.approve, store, ctx.approvals)
        plan = _plan_rollout(ctx, release, commit)
        deployment = open_deployment(ctx.deployments, env.name, commit)  # fails closed before any batch
        executor = _begin(ctx, plan, no_rollback=request.no_rollback,
                          merge_request=dict(request.merge_request) if request.merge_request else None)
        executor.write("promotion_checked", **check.to_json())
        if freeze.overridden:
            override = record_override(ctx.state_dir, freeze, action="rollout", release=release)
            executor.write("freeze_overridden", **freeze.to_json(), by=override["by"])
        executor.write(**deployment)
        if request.on_plan:
            request.on_plan(plan)
        return executor.run()


def _check_health_function(ctx: RolloutContext, gates: Gates, whose: str) -> None:
    """Refuse, before anything runs, a health check function the Salt client would not publish."""
    hc = gates.health_check
    if hc is not None and hc.function and hc.function not in ctx.client.allowed_functions:
        raise PlanError(
            f"the health check function {hc.function} of {whose} is not allowed by the Salt client",
            hint="build the client with the health check of the gates the rollout runs with (the CLI does this: "
                 "the config's for a new rollout, the saved plan's on resume)",
        )


def _plan_rollout(ctx: RolloutContext, release: str, commit: str | None) -> Plan:
    env = ctx.environment
    _check_health_function(ctx, env.gates, env.name)
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

    The batches are judged by the gates saved in the plan (ratios, bake time, health check), whatever the config
    says now; a plan saved without gates is refused (:class:`RolloutStateError`: roll it back instead).
    ``on_resume`` is called with its plan once the lock is held, before anything runs (the CLI says "resuming"
    there, so a refusal by the lock is never preceded by it)."""
    env = ctx.environment
    with _lock(ctx, "rollout resume"):
        rollout_id = unfinished_rollout(ctx.store, env.name)
        progress = load_progress(ctx.store, env.name, rollout_id)
        plan = progress.plan
        # The plan's gates, never the live config's (which may have changed since the rollout started).
        _check_health_function(ctx, plan.require_gates(), f"rollout {plan.rollout_id}'s saved plan")
        if on_resume:
            on_resume(progress.plan)
        executor = RolloutMachine(ctx, progress.plan, progress)
        executor.write("resumed", user=_user(), host=socket.gethostname(), state=progress.state())
        return executor.run()


def rollback_environment(ctx: RolloutContext, on_plan: Callable[[Plan], None] | None = None) -> RolloutResult:
    """Roll the environment back to the release before its last rollout (holding the lock).

    * An unfinished rollout is halted here and its touched minions are rolled back (base never changed).
    * A finished rollout that reached minions (succeeded, or halted with ``--no-rollback``) gets a *rollback run*:
      ``base`` is switched back to the previous release if needed, then applied - canary first, in batches, with
      the same gates - to the minions that rollout reached. Refused when there is nothing to roll back.

    ``on_plan`` is called with the plan being rolled back (or the new rollback run's plan) before anything runs.
    """
    env = ctx.environment
    with _lock(ctx, "rollback"):
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
            executor = RolloutMachine(ctx, progress.plan, progress)
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
        executor = _begin(ctx, plan, no_rollback=True, rolls_back=last_plan.rollout_id)
        executor.write(**deployment)
        if on_plan:
            on_plan(plan)
        return executor.run()


def _reached(progress: Progress, promoted: bool) -> list[str]:
    """Minions a finished rollout left on its release: all of them once promoted, else those it touched and did
    not roll back."""
    if promoted:
        return list(progress.plan.minions)
    out = []
    for bp, planned in zip(progress.batches, progress.plan.batches):
        rolled = {m for m, r in bp.step(Step.ROLLBACK_APPLY).results.items() if r.status is StepStatus.OK}
        out += [m for m in touched(bp, planned) if m not in rolled]
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
