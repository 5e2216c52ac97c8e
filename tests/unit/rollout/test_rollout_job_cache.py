"""The rollout through an external job cache (pipeline.salt_client.jobcache.JobCacheClient): a return the
syndic lost but the minion wrote to the cache counts, exactly once; without the cache the same minion is
missing and the rollout halts. The scripted fleet plays Salt; the cache holds what each minion that ran wrote
(the real Redis + minions: tests/integration/test_lossy_links.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rollout_helpers import RELEASE, TEST_FLEET, Harness

from pipeline.rollout import Outcome, RolloutRequest, start_rollout
from pipeline.salt_client.base import MinionReturn
from pipeline.salt_client.jobcache import SOURCE, JobCacheClient
from scripted_client import Behavior, ScriptedSaltClient

LOST = "test-db-1"


class ScriptedCache:
    """What each minion of ``fleet`` that ran a job wrote through the ``redis`` returner (all of them unless
    listed in ``never_ran``), whatever happened to the return afterwards."""

    returner = "redis"
    name = "redis://scripted"

    def __init__(self, fleet: ScriptedSaltClient, never_ran: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.fleet = fleet
        self.never_ran = never_ran
        self.reads = 0

    def returns(self, jid: str) -> dict[str, MinionReturn]:
        self.reads += 1
        jobs = self.fleet._jobs.get(jid, {})  # pylint: disable=protected-access  # the scripted minions' results
        return {m: replace(p.ret, source=SOURCE) for m, p in jobs.items() if m not in self.never_ran}

    def close(self) -> None:
        pass


def lossy_link(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
    """The syndic of LOST drops every return of the release (it ran; the MoM never hears of it)."""
    return Behavior(delivery="never") if minion == LOST and kwarg.get("saltenv") == RELEASE else None


def test_a_return_the_syndic_lost_counts_from_the_job_cache_once(harness: Harness) -> None:
    fleet = ScriptedSaltClient(TEST_FLEET, script=lossy_link, reachable_syndic_caches=frozenset())
    cache = ScriptedCache(fleet)
    result = start_rollout(RolloutRequest(harness.ctx("test", JobCacheClient(fleet, cache)), RELEASE))
    assert result.outcome is Outcome.SUCCEEDED and harness.serving.promotions == [("test", RELEASE)]
    results = [r for r in harness.events("minion_result") if r["minion"] == LOST]
    assert {(r["step"], r["status"], r["source"]) for r in results} == {("sync", "ok", SOURCE), ("apply", "ok", SOURCE)}
    assert len(results) == 2, "one result per step, never counted twice"
    # Nothing double-applied: the release went to LOST in exactly one job, and nobody asked it with find_job.
    jobs = {r.jid for r in fleet.published if LOST in r.targets and r.kwarg.get("saltenv") == RELEASE}
    assert len(jobs) == 1 and fleet.find_calls == []
    assert {r.fun for r in fleet.published} >= {"saltutil.sync_all", "state.apply"}


def test_without_the_job_cache_the_same_minion_is_missing_and_the_rollout_halts(harness: Harness) -> None:
    fleet = ScriptedSaltClient(TEST_FLEET, script=lossy_link, reachable_syndic_caches=frozenset())
    result = start_rollout(RolloutRequest(harness.ctx("test", fleet), RELEASE))
    assert result.outcome is Outcome.ROLLED_BACK and harness.serving.promotions == []
    statuses = {r["status"] for r in harness.events("minion_result") if r["minion"] == LOST and r["step"] == "apply"}
    assert statuses == {"missing"}


def test_a_minion_that_never_ran_is_missing_with_the_cache_too(harness: Harness) -> None:
    """True figures: the cache only adds returns that exist; a minion that did not run is not invented."""
    fleet = ScriptedSaltClient(TEST_FLEET, script=lossy_link, reachable_syndic_caches=frozenset())
    cache = ScriptedCache(fleet, never_ran={LOST})
    result = start_rollout(RolloutRequest(harness.ctx("test", JobCacheClient(fleet, cache)), RELEASE))
    assert result.outcome is Outcome.ROLLED_BACK and harness.serving.promotions == []
    gate = [g for g in harness.events("gate") if not g["passed"]][0]
    assert gate["missing"] == 1 and gate["failed"] == 0
