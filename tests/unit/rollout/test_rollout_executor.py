"""The executor against a scripted Salt client: happy path, halt + rollback, lost returns, resume, lock, promotion."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rollout_helpers import PREVIOUS, PROD_FLEET, RELEASE, TEST_FLEET, Crash, Harness, crash_at, make_config

from pipeline.errors import LockError, SaltError
from pipeline.lock import EnvironmentLock
from pipeline.rollout import (
    Outcome,
    PlanError,
    PromotionRefused,
    Recovery,
    RolloutRequest,
    RolloutStateError,
    RolloutStore,
    describe_plan,
    load_progress,
    resume_rollout,
    rollback_environment,
    start_rollout,
)
from scripted_client import Behavior, ScriptedSaltClient, failed_state_return


def fail_apply_on(*minions: str, saltenv: str | None = RELEASE):
    """A script: state.apply of ``saltenv`` fails on ``minions`` (render error on the first, failed state else)."""

    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        if fun == "state.apply" and minion in minions and (saltenv is None or kwarg.get("saltenv") == saltenv):
            return Behavior(ret=failed_state_return(), retcode=2)
        return None

    return script


def published_minions(client: ScriptedSaltClient, saltenv: str) -> set[str]:
    return {m for r in client.published if r.kwarg.get("saltenv") == saltenv for m in r.targets}


def succeed_test(harness: Harness) -> None:
    """Record a successful test rollout of RELEASE (production requires it)."""
    client = ScriptedSaltClient(TEST_FLEET)
    assert start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE)).outcome is Outcome.SUCCEEDED
    harness.serving.base = PREVIOUS  # production's syndics still serve the previous release


# -- happy path ------------------------------------------------------------------------------------------------------


def test_happy_path_runs_canary_first_then_batches_and_promotes(harness: Harness) -> None:
    client = ScriptedSaltClient(TEST_FLEET)
    result = start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE, commit="c0ffee"))
    assert result.outcome is Outcome.SUCCEEDED and result.ok
    # Every job went to an explicit list, canary alone first, each batch synced before it was applied.
    jobs = [(r.fun, r.targets, r.kwarg) for r in client.published]
    assert jobs == [
        ("saltutil.sync_all", ("test-web-1",), {"saltenv": RELEASE}),
        ("state.apply", ("test-web-1",), {"saltenv": RELEASE}),
        ("saltutil.sync_all", ("test-db-1",), {"saltenv": RELEASE}),
        ("state.apply", ("test-db-1",), {"saltenv": RELEASE}),
        ("saltutil.sync_all", ("test-web-2",), {"saltenv": RELEASE}),
        ("state.apply", ("test-web-2",), {"saltenv": RELEASE}),
    ]
    assert all("pillarenv" not in r.kwarg for r in client.published)
    # One job per batch: sync_all and state.apply went out together (a multi-function job).
    assert [r.jid for r in client.calls("saltutil.sync_all")] == [r.jid for r in client.calls("state.apply")]
    assert harness.serving.promotions == [("test", RELEASE)]
    # The promotion happens after the last batch, not before; then the canary saltenv is retired.
    events = [r["event"] for r in harness.records]
    assert events.index("promoted") > max(i for i, e in enumerate(events) if e == "batch_finished")
    assert events.index("canary_retired") > events.index("promoted")
    assert harness.serving.retired == [RELEASE] and RELEASE not in harness.serving.exposed
    store = RolloutStore(harness.state_dir)
    assert store.current("test") is None
    assert [h["outcome"] for h in store.history("test")] == ["succeeded"]
    report = json.loads(result.report_path.read_text(encoding="utf-8"))
    assert report["outcome"] == "succeeded" and report["commit"] == "c0ffee"
    assert report["totals"]["succeeded"] == 3
    assert all(m["result"] == "succeeded" and m["jid"] for b in report["batches"] for m in b["minions"])


def test_every_decision_and_result_is_in_the_journal(harness: Harness) -> None:
    client = ScriptedSaltClient(TEST_FLEET)
    result = start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))
    path = harness.state_dir / "rollouts" / "test" / result.plan.rollout_id / "journal.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["seq"] for r in lines] == list(range(1, len(lines) + 1))
    assert lines == harness.records  # the observer saw exactly what was written
    results = [r for r in lines if r["event"] == "minion_result"]
    assert {(r["minion"], r["step"]) for r in results} == {(m, s) for m in TEST_FLEET for s in ("sync", "apply")}
    assert all(r["status"] == "ok" and r["jid"] for r in results)
    assert [r["passed"] for r in lines if r["event"] == "gate"] == [True, True, True]
    assert lines[0]["event"] == "rollout_started" and lines[-1]["event"] == "rollout_finished"


# -- halt and rollback -----------------------------------------------------------------------------------------------


def test_failing_canary_halts_and_rolls_back_touching_no_other_minion(harness: Harness) -> None:
    client = ScriptedSaltClient(TEST_FLEET, script=fail_apply_on("test-web-1"))
    result = start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))
    assert result.outcome is Outcome.ROLLED_BACK and not result.ok
    # Only the canary ever received anything: the new release, then the rollback.
    assert client.touched() == {"test-web-1"}
    assert published_minions(client, RELEASE) == {"test-web-1"}
    assert published_minions(client, "base") == {"test-web-1"}
    assert harness.serving.promotions == []  # base still serves the previous release
    halted = harness.events("halted")
    assert len(halted) == 1 and halted[0]["batch"] == 0 and "1/1 failed" in halted[0]["reason"]
    report = json.loads(result.report_path.read_text(encoding="utf-8"))
    assert report["outcome"] == "rolled_back"
    assert [b["status"] for b in report["batches"]] == ["failed", "not_run", "not_run"]
    assert report["batches"][0]["minions"][0]["result"] == "rolled_back"
    assert report["batches"][0]["minions"][0]["steps"]["apply"]["reasons"]
    assert report["totals"] == {"succeeded": 0, "failed": 0, "missing": 0, "rolled_back": 1, "untouched": 2, "pending": 0}
    assert report["rollback"]["status"] == "done" and report["rollback"]["release"] == PREVIOUS
    # The halted release's canary saltenv is removed at the halt, before the rollback is published (a forward
    # job still queued for a stopped syndic must find nothing to apply); the rollback uses base.
    events = [r["event"] for r in harness.records]
    assert events.index("halted") < events.index("canary_retired") < events.index("rollback_started")
    assert harness.serving.retired == [RELEASE] and RELEASE not in harness.serving.exposed


def test_a_canary_that_cannot_be_retired_is_a_journaled_warning_not_a_failure(harness: Harness) -> None:
    harness.serving.fail_retire = True
    result = start_rollout(RolloutRequest(harness.ctx("test", ScriptedSaltClient(TEST_FLEET)), RELEASE))
    assert result.outcome is Outcome.SUCCEEDED
    (warning,) = harness.events("canary_retire_failed")
    assert "Permission denied" in warning["message"] and "--remove-canary" in warning["hint"]
    assert harness.events("canary_retired") == [] and RELEASE in harness.serving.exposed
    assert result.progress.retire_failed is not None  # the CLI's summary prints it


def test_failure_in_a_later_batch_rolls_back_it_and_every_earlier_batch(harness: Harness) -> None:
    client = ScriptedSaltClient(TEST_FLEET, script=fail_apply_on("test-db-1"))
    result = start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))
    assert result.outcome is Outcome.ROLLED_BACK
    assert "test-web-2" not in client.touched()  # batch 2 never ran
    rollback_jobs = [(r.fun, r.targets) for r in client.published if r.kwarg.get("saltenv") == "base"]
    # The failed batch first, then back towards the canary.
    assert rollback_jobs == [
        ("saltutil.sync_all", ("test-db-1",)),
        ("state.apply", ("test-db-1",)),
        ("saltutil.sync_all", ("test-web-1",)),
        ("state.apply", ("test-web-1",)),
    ]


def test_no_rollback_halts_and_leaves_the_touched_minions(harness: Harness) -> None:
    client = ScriptedSaltClient(TEST_FLEET, script=fail_apply_on("test-db-1"))
    result = start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE, no_rollback=True))
    assert result.outcome is Outcome.HALTED
    assert published_minions(client, "base") == set()
    assert "--no-rollback" in harness.events("rollback_skipped")[0]["reason"]
    report = json.loads(result.report_path.read_text(encoding="utf-8"))
    assert [m["result"] for b in report["batches"] for m in b["minions"]] == ["succeeded", "failed", "untouched"]
    # Later, the operator rolls back what that rollout left: a rollback run over the touched minions only.
    rb_client = ScriptedSaltClient(TEST_FLEET)
    rb = rollback_environment(harness.ctx("test", rb_client))
    assert rb.outcome is Outcome.SUCCEEDED and rb.plan.kind == "rollback" and rb.plan.rolls_back == result.plan.rollout_id
    assert rb_client.touched() == {"test-web-1", "test-db-1"}
    assert published_minions(rb_client, "base") == {"test-web-1", "test-db-1"}
    with pytest.raises(RolloutStateError, match="nothing to roll back"):
        rollback_environment(harness.ctx("test", ScriptedSaltClient(TEST_FLEET)))


def test_first_release_cannot_be_rolled_back_and_says_so(harness: Harness) -> None:
    harness.serving.base = None
    client = ScriptedSaltClient(TEST_FLEET, script=fail_apply_on("test-web-1"))
    result = start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))
    assert result.outcome is Outcome.HALTED
    assert "nothing to roll back to" in harness.events("rollback_skipped")[0]["reason"]
    assert client.touched() == {"test-web-1"}


def test_failure_ratio_lets_a_batch_pass_within_its_budget(harness: Harness) -> None:
    harness.config = make_config(production={"gates": {"max_failure_ratio": 0.5, "max_missing_ratio": 0.0}})
    harness.serving.base = PREVIOUS
    # production requires a test rollout of the release and an approval
    succeed_test(harness)
    client = ScriptedSaltClient(PROD_FLEET, script=fail_apply_on("prod-a-3"))
    result = start_rollout(RolloutRequest(harness.ctx("production", client), RELEASE, approve=["alice"]))
    assert result.outcome is Outcome.SUCCEEDED
    gates = harness.events("gate")
    assert [g["failed"] for g in gates][-1] == 1 and all(g["passed"] for g in gates)


def test_rollback_that_fails_on_a_minion_is_reported_as_halted(harness: Harness) -> None:
    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        if fun == "state.apply" and minion == "test-web-1":
            return Behavior(ret=failed_state_return(), retcode=2)  # fails forward and back
        return None

    result = start_rollout(RolloutRequest(harness.ctx("test", ScriptedSaltClient(TEST_FLEET, script=script)), RELEASE))
    assert result.outcome is Outcome.HALTED
    assert harness.events("rollback_finished")[0]["failed"] == ["test-web-1"]


# -- lost returns ----------------------------------------------------------------------------------------------------


def test_minion_still_running_is_waited_for_not_counted_missing(harness: Harness) -> None:
    # The canary's apply return arrives only after find_job reported it running twice.
    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        if fun == "state.apply" and minion == "test-web-1":
            return Behavior(delay_polls=10_000, running_polls=2)
        return None

    client = ScriptedSaltClient(TEST_FLEET, script=script)
    result = start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))
    assert result.outcome is Outcome.SUCCEEDED
    finds = [r for r in harness.events("lookup") if r["method"] == "find_job"]
    assert finds[0]["running"] == ["test-web-1"]
    canary_apply = [r for r in harness.events("minion_result") if r["minion"] == "test-web-1" and r["step"] == "apply"]
    assert canary_apply[0]["status"] == "ok" and canary_apply[0]["source"] == "event"


@pytest.mark.parametrize(
    "delivery,source",
    [("master_cache", "master_cache"), ("syndic_cache", "syndic_cache:syndic-test")],
)
def test_lost_return_is_recovered_from_a_job_cache(harness: Harness, delivery: str, source: str) -> None:
    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        if fun == "state.apply" and minion == "test-web-1":
            return Behavior(delivery=delivery)  # type: ignore[arg-type]
        return None

    client = ScriptedSaltClient(TEST_FLEET, script=script)
    result = start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))
    assert result.outcome is Outcome.SUCCEEDED
    res = [r for r in harness.events("minion_result") if r["minion"] == "test-web-1" and r["step"] == "apply"][0]
    assert res["status"] == "ok" and res["source"] == source


def test_truly_missing_minion_is_looked_up_then_counted_missing_and_halts(harness: Harness) -> None:
    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        if minion == "test-db-1" and kwarg.get("saltenv") == RELEASE:
            return Behavior(delivery="never")  # it stops mid-run and never answers
        return None

    client = ScriptedSaltClient(TEST_FLEET, script=script, reachable_syndic_caches=frozenset())
    ctx = harness.ctx("test", client)
    result = start_rollout(RolloutRequest(ctx, RELEASE))
    assert result.outcome is Outcome.ROLLED_BACK
    lookups = [r for r in harness.events("lookup") if "test-db-1" in r["asked"]]
    methods = [r["method"] for r in lookups if r["step"] == "sync"]
    # Every round asks the MoM's job cache, the minion's syndic, and the minion itself.
    assert methods == ["master_cache", "syndic_cache:syndic-test", "find_job"] * ctx.recovery.retries
    assert all("unavailable" in r for r in lookups if r["method"].startswith("syndic_cache"))
    missing = [r for r in harness.events("minion_result") if r["status"] == "missing"]
    assert [(r["minion"], r["step"]) for r in missing[:1]] == [("test-db-1", "sync")]
    assert "no return" in missing[0]["reasons"][0]
    # sync_all and state.apply went to it as one job, which never returned: missing in both steps.
    assert {r["step"] for r in missing if r["minion"] == "test-db-1"} == {"sync", "apply"}
    sync_job = [r.jid for r in client.calls("saltutil.sync_all") if "test-db-1" in r.targets
                and r.kwarg["saltenv"] == RELEASE]
    assert sync_job == [r.jid for r in client.calls("state.apply") if r.kwarg["saltenv"] == RELEASE
                        and "test-db-1" in r.targets]
    assert harness.serving.promotions == []
    assert "test-web-2" not in client.touched()
    # The waits were the configured ones: job timeout, then the lookup interval, never a busy loop.
    assert max(harness.clock.slept) <= ctx.recovery.interval


def test_missing_within_the_missing_budget_passes(harness: Harness) -> None:
    harness.config = make_config(test={"gates": {"max_failure_ratio": 0.0, "max_missing_ratio": 1.0}})

    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        return Behavior(delivery="never") if minion == "test-web-2" else None

    result = start_rollout(RolloutRequest(harness.ctx("test", ScriptedSaltClient(TEST_FLEET, script=script)), RELEASE))
    assert result.outcome is Outcome.SUCCEEDED
    report = json.loads(result.report_path.read_text(encoding="utf-8"))
    assert report["totals"]["missing"] == 1


# -- health and bake -------------------------------------------------------------------------------------------------


def test_bake_and_health_function_gate_the_batch(harness: Harness) -> None:
    harness.config = make_config(
        test={"gates": {"bake_seconds": 30, "health_check": {"function": "ops_app.health", "args": ["http://x/h"]}}}
    )

    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        if fun == "ops_app.health" and minion == "test-db-1":
            return Behavior(ret=False)
        return None

    client = ScriptedSaltClient(TEST_FLEET, script=script, extra=("ops_app.health",))
    result = start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))
    assert result.outcome is Outcome.ROLLED_BACK
    assert harness.clock.slept.count(30) == 2  # canary and batch 1 baked before their health checks
    health = client.calls("ops_app.health")
    assert [r.targets for r in health] == [("test-web-1",), ("test-db-1",)] and health[0].arg == ("http://x/h",)
    gate = harness.events("gate")[-1]
    assert not gate["passed"] and gate["health_failed"] == 1


def test_health_function_must_be_allowed_by_the_client(harness: Harness) -> None:
    harness.config = make_config(test={"gates": {"health_check": {"function": "ops_app.health"}}})
    client = ScriptedSaltClient(TEST_FLEET)  # built without the health function
    with pytest.raises(PlanError, match="not allowed"):
        start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))
    assert client.published == []


def test_http_health_check_per_minion(harness: Harness) -> None:
    harness.config = make_config(test={"gates": {"health_check": {"url": "http://{host}:8080/health?m={minion}"}}})

    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        if fun == "grains.item":
            return Behavior(ret={"fqdn": f"{minion}.example.net"})
        return None

    seen: list[str] = []

    def http_get(url: str, timeout: float) -> int:
        seen.append(url)
        return 503 if "test-web-2" in url else 200

    client = ScriptedSaltClient(TEST_FLEET, script=script)
    result = start_rollout(RolloutRequest(harness.ctx("test", client, http_get=http_get), RELEASE))
    assert result.outcome is Outcome.ROLLED_BACK
    assert seen == [
        "http://test-web-1.example.net:8080/health?m=test-web-1",
        "http://test-db-1.example.net:8080/health?m=test-db-1",
        "http://test-web-2.example.net:8080/health?m=test-web-2",
    ]
    bad = [r for r in harness.events("minion_result") if r["step"] == "health" and r["status"] == "failed"]
    assert bad[0]["minion"] == "test-web-2" and "HTTP 503" in bad[0]["reasons"][0]


# -- resume ----------------------------------------------------------------------------------------------------------


def test_resume_after_a_crash_mid_batch_collects_by_jid_and_never_reruns_a_finished_batch(harness: Harness) -> None:
    client = ScriptedSaltClient(TEST_FLEET)

    crash_after_batch1_apply_published = crash_at("step_published", batch=1, step="apply")

    with pytest.raises(Crash):
        start_rollout(RolloutRequest(harness.ctx("test", client, observer=crash_after_batch1_apply_published), RELEASE))
    store = RolloutStore(harness.state_dir)
    rollout_id = store.current("test")
    assert rollout_id and load_progress(store, "test", rollout_id).state() == "running"
    before = len(client.published)

    with pytest.raises(RolloutStateError, match="unfinished"):
        start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))

    result = resume_rollout(harness.ctx("test", client))
    assert result.outcome is Outcome.SUCCEEDED and result.plan.rollout_id == rollout_id
    after = client.published[before:]
    # Nothing was published again to the canary or to batch 1: batch 1's apply was collected by its jid.
    assert [(r.fun, r.targets) for r in after] == [
        ("saltutil.sync_all", ("test-web-2",)),
        ("state.apply", ("test-web-2",)),
    ]
    recovered = [r for r in harness.events("minion_result") if r["minion"] == "test-db-1" and r["step"] == "apply"]
    assert recovered[-1]["source"] == "master_cache"
    assert len(harness.events("resumed")) == 1
    assert store.current("test") is None


def test_resume_right_after_a_publish_waits_for_the_job_instead_of_counting_it_missing(harness: Harness) -> None:
    """A rollout killed just after publishing: its job may not have reached the minion yet (find_job: not
    running; no cache holds a return). The resumed rollout waits out what is left of the job timeout, as the dead
    process would have, before any minion is counted missing."""

    def script(minion: str, fun: str, arg: Any, kwarg: Any) -> Behavior | None:
        if minion == "test-db-1" and fun == "state.apply":
            # More polls than the lookup rounds make (retries x interval / poll_interval), fewer than the job timeout.
            return Behavior(delay_polls=20)
        return None

    client = ScriptedSaltClient(TEST_FLEET, script=script)
    rec = Recovery(job_timeout=120, poll_interval=1, retries=2, interval=2, find_job_timeout=1, max_wait=600)

    crash_after_batch1_apply_published = crash_at("step_published", batch=1, step="apply")

    with pytest.raises(Crash):
        start_rollout(RolloutRequest(
            harness.ctx("test", client, observer=crash_after_batch1_apply_published, recovery=rec), RELEASE
        ))
    result = resume_rollout(harness.ctx("test", client, recovery=rec))
    assert result.outcome is Outcome.SUCCEEDED
    got = [r for r in harness.events("minion_result") if r["minion"] == "test-db-1" and r["step"] == "apply"]
    assert [r["status"] for r in got] == ["ok"]


def test_crash_inside_publish_republishes_the_step_on_resume(harness: Harness) -> None:
    client = ScriptedSaltClient(TEST_FLEET)

    crash = crash_at("step_publishing", batch=2, step="sync")

    with pytest.raises(Crash):
        start_rollout(RolloutRequest(harness.ctx("test", client, observer=crash), RELEASE))
    result = resume_rollout(harness.ctx("test", client))
    assert result.outcome is Outcome.SUCCEEDED
    assert [r.targets for r in client.calls("saltutil.sync_all")] == [("test-web-1",), ("test-db-1",), ("test-web-2",)]


def test_resume_judges_by_the_plans_gates_when_the_config_changed(harness: Harness) -> None:
    """The config's gates change between start and resume (no health check, no bake, any failure allowed): the
    resumed batch is still baked, health-checked and gated as the saved plan says."""
    harness.config = make_config(test={"gates": {"bake_seconds": 30, "max_failure_ratio": 0.0,
                                                 "health_check": {"function": "ops_app.health"}}})

    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        return Behavior(ret=False) if fun == "ops_app.health" and minion == "test-db-1" else None

    crash = crash_at("batch_started", batch=1)

    client = ScriptedSaltClient(TEST_FLEET, script=script, extra=("ops_app.health",))
    with pytest.raises(Crash):
        start_rollout(RolloutRequest(harness.ctx("test", client, observer=crash), RELEASE))
    harness.config = make_config(test={"gates": {"bake_seconds": 0, "max_failure_ratio": 1.0}})
    assert harness.config.environment("test").gates.health_check is None

    result = resume_rollout(harness.ctx("test", client))
    assert result.plan.gates is not None and result.plan.gates.bake_seconds == 30
    assert harness.clock.slept.count(30) == 2  # the canary before the crash, batch 1 after the resume
    assert [r.targets for r in client.calls("ops_app.health")] == [("test-web-1",), ("test-db-1",)]
    gate = harness.events("gate")[-1]
    assert gate["batch"] == 1 and not gate["passed"] and gate["max_failure_ratio"] == 0.0
    assert result.outcome is Outcome.ROLLED_BACK


def test_resume_refuses_a_plan_saved_without_gates_and_rollback_still_works(harness: Harness) -> None:
    client = ScriptedSaltClient(TEST_FLEET)
    with pytest.raises(Crash):
        start_rollout(RolloutRequest(harness.ctx("test", client, observer=_crash_at("step_published", 1, "apply")),
                                     RELEASE))
    store = RolloutStore(harness.state_dir)
    rollout_id = store.current("test")
    assert rollout_id
    plan_file = store.rollout_dir("test", rollout_id) / "plan.json"
    data = json.loads(plan_file.read_text())
    del data["gates"]
    plan_file.write_text(json.dumps(data))
    before = len(client.published)

    with pytest.raises(RolloutStateError, match="holds no gates") as excinfo:
        resume_rollout(harness.ctx("test", client))
    assert "saltpipe rollback test" in (excinfo.value.hint or "")
    assert len(client.published) == before  # refused before anything ran
    assert "gates: none saved with the plan" in "\n".join(describe_plan(store.load_plan("test", rollout_id)))

    result = rollback_environment(harness.ctx("test", client))
    assert result.outcome is Outcome.ROLLED_BACK


def test_a_plan_with_only_some_gates_is_refused_not_completed_from_defaults() -> None:
    from pipeline.rollout import JournalError, Plan

    data = {"schema": "saltpipe-rollout-plan/1", "rollout_id": "r", "environment": "test", "release": RELEASE,
            "saltenv": RELEASE, "target": "*", "population": 0, "batches": [], "created_at": "2026-12-03T00:00:00",
            "gates": {"max_failure_ratio": 0.0, "max_missing_ratio": 0.0}}
    with pytest.raises(JournalError, match="missing bake_seconds, health_check"):
        Plan.from_json(data)
    data["gates"] |= {"bake_seconds": 5, "health_check": None}
    assert Plan.from_json(data).gates.bake_seconds == 5


def _crash_at(event: str, batch: int, step: str, minion: str | None = None):
    def crash(record: dict[str, Any]) -> None:
        if (record["event"] == event and record.get("batch") == batch and record.get("step") == step
                and (minion is None or record.get("minion") == minion)):
            raise Crash()

    return crash


def test_resume_between_the_two_publish_records_of_one_job_does_not_publish_it_again(harness: Harness) -> None:
    """Killed after the batch's job went out and its sync step was journaled, before the apply step was: the
    apply ran in that same job, so the resumed rollout collects it by the jid and judges its own return."""
    client = ScriptedSaltClient(TEST_FLEET, script=fail_apply_on("test-db-1"))
    with pytest.raises(Crash):
        start_rollout(RolloutRequest(harness.ctx("test", client, observer=_crash_at("step_published", 1, "sync")), RELEASE))
    jobs_before = {r.jid for r in client.published}
    result = resume_rollout(harness.ctx("test", client))
    assert not any(r.kwarg.get("saltenv") == RELEASE and "test-db-1" in r.targets
                   for r in client.published if r.jid not in jobs_before), "batch 1's job was published again"
    got = {r["step"]: r for r in harness.events("minion_result") if r["minion"] == "test-db-1"
           and r["step"] in ("sync", "apply")}
    assert got["sync"]["status"] == "ok" and got["apply"]["status"] == "failed"  # each judged on its own part
    assert got["sync"]["jid"] == got["apply"]["jid"]
    assert result.outcome is Outcome.ROLLED_BACK


def test_resume_between_the_two_results_of_one_return_records_each_step_once(harness: Harness) -> None:
    client = ScriptedSaltClient(TEST_FLEET)
    with pytest.raises(Crash):
        start_rollout(RolloutRequest(harness.ctx("test", client, observer=_crash_at("minion_result", 1, "sync", "test-db-1")),
                      RELEASE))
    assert resume_rollout(harness.ctx("test", client)).outcome is Outcome.SUCCEEDED
    got = [(r["step"], r["status"]) for r in harness.events("minion_result") if r["minion"] == "test-db-1"]
    # The sync result was written just before the kill (observers see records once written); apply once, after.
    assert sorted(got) == [("apply", "ok"), ("sync", "ok")]


def test_a_failed_sync_all_fails_the_minion_even_when_its_states_applied(harness: Harness) -> None:
    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        if minion == "test-web-1" and fun == "saltutil.sync_all" and kwarg.get("saltenv") == RELEASE:
            return Behavior(ret="Exception: fileserver unreachable", retcode=1)
        return None

    client = ScriptedSaltClient(TEST_FLEET, script=script)
    result = start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))
    assert result.outcome is Outcome.ROLLED_BACK
    canary = {r["step"]: r for r in harness.events("minion_result") if r["minion"] == "test-web-1"
              and r["step"] in ("sync", "apply")}
    assert canary["sync"]["status"] == "failed" and "fileserver unreachable" in " ".join(canary["sync"]["reasons"])
    assert canary["apply"]["status"] == "ok"
    assert harness.events("halted")[0]["batch"] == 0


def test_resume_continues_an_interrupted_rollback(harness: Harness) -> None:
    client = ScriptedSaltClient(TEST_FLEET, script=fail_apply_on("test-db-1"))

    crash = crash_at("step_finished", step="rollback_apply", batch=1)

    with pytest.raises(Crash):
        start_rollout(RolloutRequest(harness.ctx("test", client, observer=crash), RELEASE))
    result = resume_rollout(harness.ctx("test", client))
    assert result.outcome is Outcome.ROLLED_BACK
    rollback_targets = [r.targets for r in client.published if r.kwarg.get("saltenv") == "base"]
    assert rollback_targets == [("test-db-1",), ("test-db-1",), ("test-web-1",), ("test-web-1",)]


def test_infrastructure_error_leaves_the_rollout_resumable(harness: Harness) -> None:
    class Flaky(ScriptedSaltClient):
        fail = True

        def publish_chain(self, targets, calls):  # type: ignore[no-untyped-def]
            if self.fail and "test-db-1" in targets:
                raise SaltError("the master-of-masters cannot be reached")
            return super().publish_chain(targets, calls)

    client = Flaky(TEST_FLEET)
    with pytest.raises(SaltError):
        start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))
    assert harness.events("error")[0]["message"] == "the master-of-masters cannot be reached"
    client.fail = False
    assert resume_rollout(harness.ctx("test", client)).outcome is Outcome.SUCCEEDED


def test_resume_without_an_unfinished_rollout_is_refused(harness: Harness) -> None:
    with pytest.raises(RolloutStateError, match="no unfinished rollout"):
        resume_rollout(harness.ctx("test", ScriptedSaltClient(TEST_FLEET)))


def test_operator_rollback_of_an_unfinished_rollout(harness: Harness) -> None:
    client = ScriptedSaltClient(TEST_FLEET)

    crash = crash_at("batch_finished", batch=1)

    with pytest.raises(Crash):
        start_rollout(RolloutRequest(harness.ctx("test", client, observer=crash), RELEASE))
    result = rollback_environment(harness.ctx("test", client))
    assert result.outcome is Outcome.ROLLED_BACK
    assert published_minions(client, "base") == {"test-web-1", "test-db-1"}
    assert harness.events("halted")[-1]["reason"] == "rollback requested by the operator"


def test_rollback_after_a_promoted_rollout_switches_base_back_and_reapplies(harness: Harness) -> None:
    first = start_rollout(RolloutRequest(harness.ctx("test", ScriptedSaltClient(TEST_FLEET)), RELEASE))
    assert harness.serving.base == RELEASE
    client = ScriptedSaltClient(TEST_FLEET)
    result = rollback_environment(harness.ctx("test", client))
    assert result.outcome is Outcome.SUCCEEDED
    assert harness.serving.promotions[-1] == ("test", PREVIOUS) and harness.serving.base == PREVIOUS
    assert result.plan.rolls_back == first.plan.rollout_id and result.plan.release == PREVIOUS
    assert client.calls("saltutil.sync_all")[0].targets == ("test-web-1",)  # canary first again
    assert published_minions(client, "base") == set(TEST_FLEET)
    # Base was switched back before the first minion was touched.
    events = [r["event"] for r in harness.records[harness.records.index(harness.events("rollout_started")[-1]):]]
    assert events.index("promoted") < events.index("step_publishing")


# -- lock and promotion ----------------------------------------------------------------------------------------------


def test_lock_refuses_a_concurrent_rollout(harness: Harness) -> None:
    client = ScriptedSaltClient(TEST_FLEET)
    with EnvironmentLock(harness.state_dir, "test", "sync"):
        with pytest.raises(LockError, match="sync by"):
            start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))
        with pytest.raises(LockError):
            resume_rollout(harness.ctx("test", client))
    assert client.published == []
    # Other environments are not blocked.
    with EnvironmentLock(harness.state_dir, "production", "rollout"):
        assert start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE)).ok


def test_production_refused_without_a_test_rollout(harness: Harness) -> None:
    client = ScriptedSaltClient(PROD_FLEET)
    with pytest.raises(PromotionRefused, match="no successful rollout of .* to test") as excinfo:
        start_rollout(RolloutRequest(harness.ctx("production", client), RELEASE, approve=["alice"]))
    assert excinfo.value.exit_code == 1
    assert client.published == [] and harness.serving.exposed == set()


def test_production_refused_after_a_failed_test_rollout(harness: Harness) -> None:
    start_rollout(RolloutRequest(harness.ctx("test", ScriptedSaltClient(TEST_FLEET, script=fail_apply_on("test-web-1"))), RELEASE))
    with pytest.raises(PromotionRefused, match="no successful rollout"):
        start_rollout(RolloutRequest(harness.ctx("production", ScriptedSaltClient(PROD_FLEET)), RELEASE, approve=["alice"]))


def test_production_refused_without_approvals_then_accepted(harness: Harness) -> None:
    succeed_test(harness)
    client = ScriptedSaltClient(PROD_FLEET)
    with pytest.raises(PromotionRefused, match="needs 1 approval.*has 0"):
        start_rollout(RolloutRequest(harness.ctx("production", client), RELEASE))
    assert client.published == []
    result = start_rollout(RolloutRequest(harness.ctx("production", client), RELEASE, approve=["alice"]))
    assert result.outcome is Outcome.SUCCEEDED
    check = harness.events("promotion_checked")[-1]
    assert check["approvals"][0]["name"] == "alice" and check["approvals"][0]["at"]
    assert check["satisfied_by"]["test"]
    report = json.loads(result.report_path.read_text(encoding="utf-8"))
    assert report["promotion"]["approvals"][0]["name"] == "alice"
    # Canary first across syndics, then the batches
    sizes = [len(r.targets) for r in client.calls("state.apply")]
    assert sizes == [1, 1, 4]


def test_approvals_add_up_across_runs_and_count_each_name_once(harness: Harness) -> None:
    harness.config = make_config(production={"approvals_required": 2})
    succeed_test(harness)
    client = ScriptedSaltClient(PROD_FLEET)
    with pytest.raises(PromotionRefused, match="has 1 \\(alice\\)"):
        start_rollout(RolloutRequest(harness.ctx("production", client), RELEASE, approve=["alice", "alice"]))
    assert start_rollout(RolloutRequest(harness.ctx("production", client), RELEASE, approve=["bob"])).ok


def test_plan_refuses_when_a_syndic_does_not_serve_the_release(harness: Harness) -> None:
    harness.serving.fail_attest = True
    client = ScriptedSaltClient(TEST_FLEET)
    with pytest.raises(Exception, match="serves nothing"):
        start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))
    assert client.published == []
    assert RolloutStore(harness.state_dir).current("test") is None


def test_plan_refuses_a_release_base_already_serves(harness: Harness) -> None:
    harness.serving.base = RELEASE
    with pytest.raises(PlanError, match="already serves"):
        start_rollout(RolloutRequest(harness.ctx("test", ScriptedSaltClient(TEST_FLEET)), RELEASE))


def test_unreachable_minions_refuse_the_plan(harness: Harness) -> None:
    client = ScriptedSaltClient(TEST_FLEET, silent={"test-web-9": "syndic-test"})
    with pytest.raises(PlanError, match="test-web-9"):
        start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))
    assert client.touched() == set()


def test_recovery_settings_bound_the_waits(harness: Harness) -> None:
    rec = Recovery(job_timeout=7, poll_interval=0.5, retries=2, interval=3, find_job_timeout=1, max_wait=20)

    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        return Behavior(delivery="never") if minion == "test-web-1" else None

    start = harness.clock.now
    start_rollout(RolloutRequest(harness.ctx("test", ScriptedSaltClient(TEST_FLEET, script=script), recovery=rec), RELEASE))
    # forward sync (7 s + 2 x 3 s), the rollback's sync of the same missing minion (7 s + 2 x 3 s), the rollback
    # published to it once more (7 s + 2 x 3 s), then the reconcile's grains.item waits the job timeout (7 s)
    assert harness.clock.now - start == pytest.approx(3 * (7 + 2 * 3) + 7)


def test_a_top_file_keyed_base_is_refused_before_anything_runs(harness: Harness) -> None:
    harness.serving.top = "base:\n  '*':\n    - base\n"
    client = ScriptedSaltClient(TEST_FLEET)
    with pytest.raises(PlanError, match="keyed 'base'"):
        start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))
    assert client.published == [] and harness.serving.exposed == set()


def test_rollback_of_a_promoted_but_unfinished_rollout_asks_to_resume_first(harness: Harness) -> None:
    client = ScriptedSaltClient(TEST_FLEET)

    crash = crash_at("promoted")

    with pytest.raises(Crash):
        start_rollout(RolloutRequest(harness.ctx("test", client, observer=crash), RELEASE))
    with pytest.raises(RolloutStateError, match="already promoted"):
        rollback_environment(harness.ctx("test", client))
    assert resume_rollout(harness.ctx("test", client)).outcome is Outcome.SUCCEEDED
    assert harness.serving.promotions == [("test", RELEASE)]  # promoted once, not again on resume
    assert rollback_environment(harness.ctx("test", client)).outcome is Outcome.SUCCEEDED
    assert harness.serving.base == PREVIOUS


@pytest.mark.parametrize("crash_on", ["batch_finished", "halted", "rollback_skipped"])
def test_a_kill_around_the_halt_neither_reruns_the_batch_nor_duplicates_decisions(harness: Harness, crash_on: str) -> None:
    client = ScriptedSaltClient(TEST_FLEET, script=fail_apply_on("test-db-1"))

    def crash(record: dict[str, Any]) -> None:
        if record["event"] == crash_on and record.get("batch", 1) == 1:
            raise Crash()

    with pytest.raises(Crash):
        start_rollout(RolloutRequest(harness.ctx("test", client, observer=crash), RELEASE, no_rollback=True))
    before = len(client.published)
    result = resume_rollout(harness.ctx("test", client))
    assert result.outcome is Outcome.HALTED
    # nothing published again; only the reconcile asks the minions which release they run
    assert [p.fun for p in client.published[before:]] == ["grains.item"]
    assert len(harness.events("halted")) == 1 and len(harness.events("rollback_skipped")) == 1
    assert len([g for g in harness.events("gate") if g["batch"] == 1]) == 1


# -- a syndic that stops mid-batch (issue 17): retire at halt, re-publish the rollback, reconcile, leftovers ------


def _file_state(path: str, changed: bool) -> dict[str, Any]:
    return {f"file_|-{path}_|-{path}_|-managed": {"result": True, "comment": "", "duration": 1.0,
                                                  "changes": {"diff": "New file"} if changed else {}}}


def test_a_lost_rollback_is_published_again_and_the_minions_are_reconciled(harness: Harness) -> None:
    """The canary's forward job is lost (its syndic stopped); the rollback's first job is lost too; the second
    reaches it. The grain read afterwards says which release each touched minion runs."""
    sent: dict[str, int] = {}

    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        if minion != "test-web-1":
            return None
        if fun == "grains.item":
            return Behavior(ret={"saltpipe_release": PREVIOUS})
        if kwarg.get("saltenv") == RELEASE:
            return Behavior(delivery="never")
        sent[fun] = sent.get(fun, 0) + 1
        return Behavior(delivery="never") if sent[fun] == 1 else None

    client = ScriptedSaltClient(TEST_FLEET, script=script)
    result = start_rollout(RolloutRequest(harness.ctx("test", client), RELEASE))
    assert result.outcome is Outcome.ROLLED_BACK
    rollback_jobs = [r for r in client.calls("state.apply") if r.kwarg.get("saltenv") == "base"]
    assert [r.targets for r in rollback_jobs] == [("test-web-1",), ("test-web-1",)]  # published twice
    republished = harness.events("step_republished")
    assert len(republished) == 1 and republished[0]["replaces"] == rollback_jobs[0].jid
    assert republished[0]["jid"] == rollback_jobs[1].jid and republished[0]["targets"] == ["test-web-1"]
    # The forward job (the halted release) is never sent twice.
    assert len([r for r in client.calls("state.apply") if r.kwarg.get("saltenv") == RELEASE]) == 1
    events = [r["event"] for r in harness.records]
    assert events.index("canary_retired") < events.index("rollback_started")
    assert events.index("rollback_finished") < events.index("reconciled") < events.index("rollout_finished")
    report = json.loads(result.report_path.read_text(encoding="utf-8"))
    assert report["reconciled"]["by_release"] == {PREVIOUS: ["test-web-1"]}
    assert report["batches"][0]["minions"][0]["running"] == PREVIOUS


def test_files_the_release_added_are_reported_left_behind_by_the_rollback(harness: Harness) -> None:
    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        if fun != "state.apply":
            return None
        if kwarg.get("saltenv") == RELEASE:  # the new release adds /etc/new.conf and fails a state
            ret = {**_file_state("/etc/app.conf", True), **_file_state("/etc/new.conf", True),
                   **failed_state_return()}
            return Behavior(ret=ret, retcode=2)
        return Behavior(ret=_file_state("/etc/app.conf", True))  # the previous release manages app.conf only

    result = start_rollout(RolloutRequest(harness.ctx("test", ScriptedSaltClient(TEST_FLEET, script=script)), RELEASE))
    assert result.outcome is Outcome.ROLLED_BACK
    report = json.loads(result.report_path.read_text(encoding="utf-8"))
    assert report["rollback"]["left_behind"] == {"test-web-1": ["/etc/new.conf"]}
    assert report["batches"][0]["minions"][0]["left_behind"] == ["/etc/new.conf"]


def test_the_user_starting_the_rollout_cannot_approve_it(harness: Harness) -> None:
    """Issue 11: one operator alone cannot satisfy approvals_required (carol starts and approves: refused)."""
    succeed_test(harness)
    client = ScriptedSaltClient(PROD_FLEET)
    with pytest.raises(PromotionRefused, match="carol starts this rollout .* cannot approve it too"):
        start_rollout(RolloutRequest(harness.ctx("production", client), RELEASE, approve=["carol"]))
    assert client.published == [] and harness.serving.exposed == set()


def test_an_approver_gitlab_does_not_allow_is_refused(harness: Harness) -> None:
    succeed_test(harness)
    client = ScriptedSaltClient(PROD_FLEET)
    with pytest.raises(PromotionRefused, match="mallory may not approve"):
        start_rollout(RolloutRequest(harness.ctx("production", client), RELEASE, approve=["mallory"]))
    assert client.published == []


def test_approvals_without_gitlab_fail_closed(harness: Harness) -> None:
    from pipeline.errors import GitLabError

    succeed_test(harness)
    harness.authority = None
    with pytest.raises(GitLabError, match="checked against GitLab") as excinfo:
        start_rollout(RolloutRequest(harness.ctx("production", ScriptedSaltClient(PROD_FLEET)), RELEASE, approve=["alice"]))
    assert excinfo.value.exit_code == 2


def test_an_unverified_approval_line_does_not_count(harness: Harness) -> None:
    """A line as the old `--approve NAME` wrote it (no GitLab proof) is listed as not counted."""
    succeed_test(harness)
    path = harness.state_dir / "approvals" / "production" / f"{RELEASE}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"name": "alice", "at": "2026-01-01T00:00:00+00:00", "recorded_by": "root",
                                "host": "h"}) + "\n")
    with pytest.raises(PromotionRefused, match="not counted: alice \\(not verified through GitLab\\)"):
        start_rollout(RolloutRequest(harness.ctx("production", ScriptedSaltClient(PROD_FLEET)), RELEASE))
