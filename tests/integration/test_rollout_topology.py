"""The rollout on the real topology (issue 6, point 9): ``production`` (two syndics, six minions), driven through
the Python API (:func:`start_rollout`, :func:`resume_rollout`, :func:`rollback_environment`) with LocalClient on
the MoM and attestation through each syndic master's fileserver.

Each release is a small tree (rollout_helpers.content): its highstate writes, inside each minion's sandbox, the
label of the release (``applied``) and a per-release marker, so "which minions did this release touch" is read
from the minions' own files, not from saltpipe's report. One release fails on chosen minions through a real
failed state (file.managed with a missing source).

Order inside the module (one story): base v0 everywhere -> happy path v1 (canary first, promoted) -> rollback
(back to v0) -> failing canary -> a minion killed mid-run (restarted afterwards) -> a rollout killed mid-batch
while a second one is refused by the lock, then resumed. Production's schedule at 6 minions is canary 1, then 1,
then 4 (5% and 25% are reached already).

The module restores each syndic's ``current`` link as it was (and removes the canary links it made), so the other modules keep serving what they served.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from it_helpers import served_tree_restored
from rollout_helpers import (
    ENV,
    FAST,
    applied,
    context,
    journal,
    kill_minion,
    reached,
    release,
    restart_minion,
    write_config,
)
from sync_helpers import killed_at_the_end

from pipeline.config import load_config
from pipeline.errors import LockError
from pipeline.rollout import Outcome, RolloutRequest, resume_rollout, rollback_environment, start_rollout
from pipeline.rollout.planner import order_minions
from pipeline.sync import SaltMasterAttestor, attest, saltenv_for
from pipeline.topology import Topology

SYNDICS = ("syndic-prod-a", "syndic-prod-b")
HELPERS = Path(__file__).resolve().parent / "rollout_helpers.py"


@pytest.fixture(scope="module")
def state(topology: Topology, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """This module's state dir and config; restores each production syndic's ``current`` link at the end (and
    removes the canary links the rollouts made)."""
    with served_tree_restored(topology, SYNDICS):
        base = tmp_path_factory.mktemp("rollout")
        state_dir = base / "state"
        config = write_config(topology, state_dir, base / "pipeline.yaml")
        yield {"dir": state_dir, "config": config}


@pytest.fixture(scope="module")
def minions(topology: Topology) -> tuple[str, ...]:
    return topology.env_minions(ENV)


@pytest.fixture(scope="module")
def order(topology: Topology, minions) -> list[str]:
    """The planner's deterministic order (canary first): the same fleet gets the same canary."""
    return order_minions({m: topology.minion(m).syndic for m in minions})


@pytest.fixture(scope="module")
def v0(topology: Topology, state, minions) -> str:
    """Release v0 served as base on both syndics and applied on every production minion (what rollouts leave)."""
    rel = release(state["dir"], "v0")
    ctx = context(topology, state["config"])
    try:
        ctx.serving.promote(ctx.environment, rel.id)
    finally:
        ctx.client.close()
    result = topology.mom.salt(list(minions), "state.apply", timeout=120)
    assert set(result.returns) == set(minions), result
    assert applied(topology, minions) == dict.fromkeys(minions, "v0")
    return rel.id


def base_served(topology: Topology) -> str | None:
    """The release both syndic masters serve as base, read through their fileservers (None if they differ)."""
    attestor = SaltMasterAttestor({n: topology.syndic(n).master.config_file for n in SYNDICS})
    served = attest(attestor, SYNDICS, None, "base")
    return served.served[0].release if served.ok else None


def syndic_dirs(topology: Topology) -> dict[str, tuple[set[str], set[str]]]:
    """Each production syndic's canary saltenv links and the releases it holds (read from its file_roots)."""
    out = {}
    for name in SYNDICS:
        root = topology.syndic(name).file_roots
        envs = {p.name for p in (root / "envs").iterdir()} if (root / "envs").is_dir() else set()
        releases = {p.name for p in (root / "releases").iterdir() if not p.name.startswith(".")}
        out[name] = (envs, releases)
    return out


def published_targets(records: list[dict], step_prefix: str = "") -> dict[int, set[str]]:
    """Batch index -> every minion a job of that batch was published to (from the journal)."""
    out: dict[int, set[str]] = {}
    for rec in records:
        if rec["event"] == "step_published" and rec["step"].startswith(step_prefix):
            out.setdefault(rec["batch"], set()).update(rec["targets"])
    return out


def start(ctx, release_id, **kwargs):
    return start_rollout(RolloutRequest(ctx, release_id, **kwargs))


def run(topology, state, fn, *args, **kwargs):
    ctx = context(topology, state["config"])
    try:
        return fn(ctx, *args, **kwargs)
    finally:
        ctx.client.close()


# ----------------------------------------------------------------------------------------------------------------


def test_happy_path_canary_first_then_promoted(topology, state, minions, order, v0) -> None:
    v1 = release(state["dir"], "v1").id
    result = run(topology, state, start, v1)
    assert result.outcome is Outcome.SUCCEEDED
    plan = result.plan
    assert [b.minions for b in plan.batches] == [tuple(order[:1]), tuple(order[1:2]), tuple(order[2:])]
    assert plan.batches[0].name == "canary" or plan.batches[0].spec == "canary"
    records = journal(state["dir"], plan.rollout_id)
    # Canary first: every job of batch 0 went to the canary only, and batch 1 started after batch 0 passed.
    assert published_targets(records) == {0: set(order[:1]), 1: set(order[1:2]), 2: set(order[2:])}
    events = [(r["event"], r.get("batch")) for r in records]
    assert events.index(("batch_finished", 0)) < events.index(("batch_started", 1))
    assert applied(topology, minions) == dict.fromkeys(minions, "v1")
    assert base_served(topology) == v1
    # The canary saltenv is gone from both syndics once promoted; v1 stays (it is base now). Canary links other
    # modules left (a `sync --canary` of test_impact) keep their release beyond `keep`, one each.
    keep = load_config(state["config"]).release.keep
    for envs, releases in syndic_dirs(topology).values():
        assert saltenv_for(v1) not in envs and v1 in releases and len(releases) <= keep + len(envs)
    report = json.loads(result.report_path.read_text())
    assert report["outcome"] == "succeeded" and report["promoted"]
    assert {m["id"]: m["result"] for b in report["batches"] for m in b["minions"]} == dict.fromkeys(minions,
                                                                                                     "succeeded")


def test_rollback_switches_base_back_and_reapplies(topology, state, minions, v0) -> None:
    result = run(topology, state, rollback_environment)
    assert result.plan.kind == "rollback" and result.plan.release == v0
    assert result.outcome is Outcome.SUCCEEDED, result.progress
    assert base_served(topology) == v0
    assert applied(topology, minions) == dict.fromkeys(minions, "v0")


def test_failing_canary_halts_and_touches_no_other_minion(topology, state, minions, order, v0) -> None:
    canary = order[0]
    bad = release(state["dir"], "bad-canary", fail_on=[canary]).id
    result = run(topology, state, start, bad)
    assert result.outcome is Outcome.ROLLED_BACK
    records = journal(state["dir"], result.plan.rollout_id)
    (gate,) = [r for r in records if r["event"] == "gate"]
    assert gate["batch"] == 0 and not gate["passed"] and gate["failed"] == 1
    assert published_targets(records) == {0: {canary}}, "no job of the release went beyond the canary"
    # On the minions themselves: the canary got the release and was rolled back; nobody else ever had it.
    assert reached(topology, canary, "bad-canary")
    others = [m for m in minions if m != canary]
    assert [m for m in others if reached(topology, m, "bad-canary")] == []
    # Halted and rolled back with base: the canary saltenv of the bad release is removed from the syndics.
    assert all(saltenv_for(bad) not in envs for envs, _ in syndic_dirs(topology).values())
    assert applied(topology, minions) == dict.fromkeys(minions, "v0")
    assert base_served(topology) == v0
    report = json.loads(result.report_path.read_text())
    results = {m["id"]: m["result"] for b in report["batches"] for m in b["minions"]}
    assert results == {canary: "rolled_back", **dict.fromkeys(others, "untouched")}


def test_minion_stopped_mid_run_is_missing_and_never_promoted(topology, state, order, v0) -> None:
    victim = order[1]  # batch 1: stopped once the canary batch has passed, before its own batch starts
    v3 = release(state["dir"], "v3").id
    killed: list[str] = []

    def observer(rec: dict) -> None:
        if rec["event"] == "batch_started" and rec["batch"] == 1 and not killed:
            kill_minion(topology, victim)
            killed.append(victim)

    # The victim is waited for twice (its batch, then its rollback): a shorter job timeout than FAST's keeps the
    # test short; the live minions of this topology return in 2-4 s.
    ctx = context(topology, state["config"], observer=observer, recovery=replace(FAST, job_timeout=10.0))
    try:
        result = start(ctx, v3)
    finally:
        ctx.client.close()
        restart_minion(topology, victim)  # the session's topology is whole again for the next tests
    assert killed == [victim]
    assert result.outcome in (Outcome.HALTED, Outcome.ROLLED_BACK)
    records = journal(state["dir"], result.plan.rollout_id)
    lookups = {r["method"] for r in records if r["event"] == "lookup" and victim in r.get("asked", [victim])}
    assert "find_job" in lookups and "master_cache" in lookups, lookups
    statuses = {(r["batch"], r["step"]): r["status"] for r in records
                if r["event"] == "minion_result" and r["minion"] == victim}
    assert statuses[(1, "sync")] == "missing", statuses
    gate = [r for r in records if r["event"] == "gate" and r["batch"] == 1][0]
    assert not gate["passed"] and gate["missing"] == 1
    assert not any(r["event"] in ("promoting", "promoted") for r in records)
    assert published_targets(records).keys() == {0, 1}, "batch 2 never ran"
    assert base_served(topology) == v0
    assert not reached(topology, victim, "v3")
    assert [m for m in order[2:] if reached(topology, m, "v3")] == []
    assert applied(topology, [order[0]]) == {order[0]: "v0"}, "the canary was rolled back"
    report = json.loads(result.report_path.read_text())
    results = {m["id"]: m["result"] for b in report["batches"] for m in b["minions"]}
    assert results[victim] == "missing" and results[order[0]] == "rolled_back", results
    assert {results[m] for m in order[2:]} == {"untouched"}


def _wait_for(path_records, predicate, deadline: float, proc: subprocess.Popen) -> list[dict]:
    while True:
        records = path_records()
        if predicate(records):
            return records
        assert proc.poll() is None, f"the rollout exited early: {proc.communicate()}"
        assert time.monotonic() < deadline, f"condition not reached; journal: {records[-3:]}"
        time.sleep(0.1)


def test_killed_rollout_resumes_without_rerunning_a_finished_batch(topology, state, minions, v0) -> None:
    v4 = release(state["dir"], "v4").id
    rollouts = state["dir"] / "rollouts" / ENV
    # Killed -9 at the end of the block, in the middle of batch 1.
    with killed_at_the_end([sys.executable, str(HELPERS), "start", str(topology.workdir), str(state["config"]),
                            v4]) as proc:
        deadline = time.monotonic() + 180

        def records() -> list[dict]:
            current = rollouts / "current"
            if not current.exists():
                return []
            try:
                return journal(state["dir"], current.read_text().strip())
            except (FileNotFoundError, json.JSONDecodeError):
                return []  # not written yet, or a line being written

        _wait_for(records, lambda rs: any(r["event"] == "batch_started" for r in rs), deadline, proc)
        # A second rollout of the environment meanwhile is refused, naming the holder and since when.
        with pytest.raises(LockError) as refused:
            run(topology, state, start, v4)
        message = str(refused.value)
        assert f"environment '{ENV}' is locked: rollout by" in message and f"pid {proc.pid}" in message
        assert " since 20" in message, message
        # The moment: batch 1's apply job is published, batch 0 has finished.
        _wait_for(records, lambda rs: any(r["event"] == "step_published" and r["batch"] == 1 and r["step"] == "apply"
                                          for r in rs), deadline, proc)
    rollout_id = (rollouts / "current").read_text().strip()
    before = journal(state["dir"], rollout_id)
    assert not any(r["event"] == "rollout_finished" for r in before)

    result = run(topology, state, resume_rollout)
    assert result.plan.rollout_id == rollout_id
    assert result.outcome is Outcome.SUCCEEDED
    after = journal(state["dir"], rollout_id)[len(before):]
    assert after[0]["event"] == "resumed"
    rerun = [r for r in after if r["event"] in ("batch_started", "step_publishing", "step_published")
             and r["batch"] == 0]
    assert rerun == [], f"batch 0 had finished and ran again: {rerun}"
    # Batch 1's apply job was published before the kill: collected by its jid, not published again.
    assert not any(r["event"] == "step_publishing" and r["batch"] == 1 and r["step"] == "apply" for r in after)
    assert applied(topology, minions) == dict.fromkeys(minions, "v4")
    assert base_served(topology) == v4


def test_production_approval_is_proven_by_gitlab(topology, state, minions, v0) -> None:
    """Issue 11, approvals: production needs one approval, checked through GitLab (a loopback GitLab speaking its
    API to the real client). The user who started the pipeline cannot approve; a user GitLab does not allow to
    deploy cannot; the gate played by an allowed maintainer can - and only then does anything reach a minion."""
    from pipeline.gitlab import CiEnvironment, PythonGitLabClient
    from pipeline.gitlab.loopback import LoopbackGitLab
    from pipeline.rollout.approvals import GitLabApprovals
    from pipeline.rollout.model import PromotionRefused

    gitlab = LoopbackGitLab().start()
    try:
        token = gitlab.add_user("saltpipe-bot", access_level=40)
        gitlab.add_user("alice", access_level=40)
        gitlab.add_user("bob", access_level=40)
        gitlab.add_user("mallory", access_level=20)  # a Reporter: may not deploy to production
        gitlab.protect("production")
        gitlab.add_pipeline(71, "alice", {"approve:production": "alice"})  # alice merged and played the gate
        gitlab.add_pipeline(72, "alice", {"approve:production": "mallory"})
        gitlab.add_pipeline(73, "alice", {"approve:production": "bob"})
        rel = release(state["dir"], "v-approved").id

        def attempt(pipeline_id: int, approver: str):
            ctx = context(topology, state["config"])
            env = ctx.environment.model_copy(update={"approvals_required": 1})
            ci = CiEnvironment.from_environ(gitlab.environ(token, pipeline_id))
            authority = GitLabApprovals(PythonGitLabClient(gitlab.url, token, "1"), ci)
            try:
                return start(replace(ctx, environment=env, authority=authority), rel, approve=[approver])
            finally:
                ctx.client.close()

        with pytest.raises(PromotionRefused, match="alice starts this rollout .* cannot approve it too"):
            attempt(71, "alice")
        with pytest.raises(PromotionRefused, match="mallory may not approve rollouts to production"):
            attempt(72, "mallory")
        with pytest.raises(PromotionRefused, match="--approve bob: approve:production of pipeline 72 was played by mallory"):
            attempt(72, "bob")
        assert applied(topology, minions) != dict.fromkeys(minions, "v-approved")  # nothing reached a minion
        result = attempt(73, "bob")
        assert result.outcome is Outcome.SUCCEEDED
        assert applied(topology, minions) == dict.fromkeys(minions, "v-approved")
        check = json.loads(result.report_path.read_text())["promotion"]
        assert check["started_by"] == "alice"
        assert [(a["name"], a["allowed_by"]) for a in check["approvals"]] == [
            ("bob", "deploy access to protected environment production (Maintainers)")]
        assert "approve:production" in check["approvals"][0]["proof"] and "pipeline 73" in check["approvals"][0]["proof"]
    finally:
        gitlab.stop()
