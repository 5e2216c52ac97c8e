"""Unit tests of the impact analysis (pipeline/impact.py) with the scripted Salt client (a test double).

Each test scripts what the minions answer to ``grains.item roles`` and ``state.apply test=True`` and checks the
sample, what was published to whom, and the aggregate - and that the JSON renders in the MR note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from doubles import FakeClock

from pipeline.config import Environment, PipelineConfig
from pipeline.errors import SyncError, UsageError
from pipeline.impact import (
    MINION_ERROR,
    NO_ROLE,
    RENDER_ERROR,
    ImpactContext,
    analyse_impact,
    format_text,
    sample_minions,
)
from pipeline.mrnote import ImpactReport, MrReport, render_markdown
from pipeline.rollout.planner import PlanError
from scripted_client import Behavior, ScriptedSaltClient

RELEASE = "rel-0123456789ab"

FLEET = {
    "test-web-1": "syndic-test",
    "test-web-2": "syndic-test",
    "test-web-3": "syndic-test",
    "test-app-1": "syndic-test",
    "test-both-1": "syndic-test",
    "test-bare-1": "syndic-test",
}
ROLES: dict[str, Any] = {
    "test-web-1": ["web"],
    "test-web-2": ["web"],
    "test-web-3": ["web"],
    "test-app-1": ["app"],
    "test-both-1": ["app", "web"],
    "test-bare-1": None,  # no roles grain
}


def _env() -> Environment:
    cfg = PipelineConfig.model_validate({
        "version": 1,
        "environments": {
            "test": {
                "tier": "testing",
                "syndics": [{"name": "syndic-test", "file_roots": {"type": "local", "path": "/srv/t"}}],
                "target": "G@saltpipe_env:test",
                "canary": 1,
                "batches": ["100%"],
            }
        },
    })
    return cfg.environment("test")


@dataclass
class FakeServing:
    exposed: bool = True
    top: str | None = "{{ saltenv }}:\n  '*':\n    - base\n"
    attested: list[str] = field(default_factory=list)

    def saltenv_for(self, release_id: str) -> str:
        return release_id

    def attest(self, env: Environment, release_id: str) -> Mapping[str, str]:
        self.attested.append(release_id)
        if not self.exposed:
            raise SyncError("syndic-test: serves nothing as saltenv " + release_id)
        return {"syndic-test": release_id}

    def top_file(self, release_id: str) -> str | None:
        return self.top


def state(fun: str, sid: str, *, result: bool | None, changes: Mapping[str, Any] | None = None,
          comment: str = "", sls: str = "base", run: int = 0) -> dict[str, Any]:
    mod, _, f = fun.partition(".")
    return {f"{mod}_|-{sid}_|-/x/{sid}_|-{f}": {
        "__id__": sid, "__sls__": sls, "__run_num__": run, "result": result,
        "changes": dict(changes or {}), "comment": comment,
    }}


def client(highstate: Mapping[str, Any], roles: Mapping[str, Any] | None = None,
           never: Sequence[str] = ()) -> ScriptedSaltClient:
    roles = ROLES if roles is None else roles

    def script(minion: str, fun: str, arg: Sequence[Any], kwarg: Mapping[str, Any]) -> Behavior | None:
        if minion in never:
            return Behavior(delivery="never")
        if fun == "grains.item":
            value = roles[minion]
            return Behavior(ret={} if value is None else {"roles": value})
        if fun == "state.apply":
            return Behavior(ret=highstate[minion] if minion in highstate else highstate["*"])
        return None

    return ScriptedSaltClient(minions=FLEET, script=script)


def run(c: ScriptedSaltClient, serving: FakeServing | None = None, per_role: int = 2) -> Any:
    return analyse_impact(ImpactContext(
        environment=_env(), release_id=RELEASE, saltenv=RELEASE, client=c, sample_per_role=per_role,
        serving=serving if serving is not None else FakeServing(), sha="3f" * 20, timeout=5.0,
        poll_interval=1.0, clock=FakeClock(),
    ))


def test_sample_prefers_minions_that_cover_several_roles() -> None:
    roles = {"a-1": ["app"], "w-1": ["web"], "w-2": ["web"], "b-1": ["app", "web"], "x-1": [NO_ROLE]}
    assert sample_minions(roles, 2) == {NO_ROLE: ("x-1",), "app": ("a-1", "b-1"), "web": ("b-1", "w-1")}
    assert sample_minions(roles, 1) == {NO_ROLE: ("x-1",), "app": ("a-1",), "web": ("b-1",)}


def test_aggregates_changes_and_failures_per_state_id_on_the_sample_only() -> None:
    ok = {**state("file.managed", "nginx_conf", result=None, changes={"diff": "..."}),
          **state("pkg.installed", "nginx", result=True)}
    bad = {**ok, **state("file.managed", "limits", result=False, comment="Source file salt://x not found", run=1)}
    c = client({"*": ok, "test-app-1": bad})
    result = run(c)

    assert result.sampled == {NO_ROLE: ("test-bare-1",), "app": ("test-app-1", "test-both-1"),
                              "web": ("test-both-1", "test-web-1")}
    applied = c.calls("state.apply")
    assert len(applied) == 1
    assert applied[0].targets == ("test-app-1", "test-bare-1", "test-both-1", "test-web-1")
    assert applied[0].kwarg == {"test": True, "saltenv": RELEASE}
    assert c.touched("state.apply") == {"test-app-1", "test-bare-1", "test-both-1", "test-web-1"}

    by_id = {s.id: s for s in result.states}
    assert set(by_id) == {"nginx_conf", "limits"}  # an unchanged state is not listed
    assert by_id["nginx_conf"].changed == ("test-app-1", "test-bare-1", "test-both-1", "test-web-1")
    assert by_id["nginx_conf"].function == "file.managed" and by_id["nginx_conf"].sls == "base"
    assert by_id["limits"].failed == ("test-app-1",) and "not found" in (by_id["limits"].comment or "")
    assert result.states[0].id == "limits"  # failures first
    assert not result.ok and not result.missing


def test_nothing_to_change_is_ok_and_json_renders_in_the_mr_note() -> None:
    result = run(client({"*": state("pkg.installed", "nginx", result=True)}))
    assert result.ok and result.states == ()
    report = ImpactReport.model_validate(result.to_json())
    assert report.environment == "test" and report.saltenv == RELEASE and report.sha == "3f" * 20
    note = render_markdown(MrReport(head_sha=None, pipeline_url=None, findings=None, waived=0, tests=(), impact=report))
    assert "Impact" in note and RELEASE in note


def test_json_with_changes_and_failures_renders_each_state_in_the_note() -> None:
    hs = {**state("file.managed", "nginx_conf", result=None, changes={"diff": "x"}),
          **state("service.running", "nginx", result=False, comment="would fail")}
    report = ImpactReport.model_validate(run(client({"*": hs})).to_json())
    assert {s.id for s in report.states} == {"nginx_conf", "nginx"}
    note = render_markdown(MrReport(head_sha=None, pipeline_url=None, findings=None, waived=0, tests=(), impact=report))
    assert "nginx_conf" in note and "would fail" in note


def test_render_errors_and_error_strings_are_failures_of_pseudo_states() -> None:
    ok = state("pkg.installed", "nginx", result=True)
    c = client({"*": ok, "test-web-1": ["Rendering SLS 'base:nginx' failed: mapping values are not allowed"],
                "test-app-1": "'state.apply' is not available."})
    result = run(c)
    by_id = {s.id: s for s in result.states}
    assert by_id[RENDER_ERROR].failed == ("test-web-1",) and "Rendering SLS" in (by_id[RENDER_ERROR].comment or "")
    assert by_id[MINION_ERROR].failed == ("test-app-1",)
    assert not result.ok


def test_the_sampled_minions_get_base_custom_modules_back_after_the_dry_run() -> None:
    """Salt's highstate syncs the saltenv's custom modules even in test mode: the dry run is followed by a
    sync of base on exactly the sampled minions; one that cannot be restored makes the result not ok."""
    c = client({"*": state("pkg.installed", "nginx", result=True)})
    result = run(c)
    (dry,) = c.calls("state.apply")
    (restore,) = c.calls("saltutil.sync_all")
    assert c.published.index(restore) > c.published.index(dry), "restored after the dry run, not before"
    assert restore.targets == dry.targets and restore.kwarg == {"saltenv": "base"}
    assert result.ok and result.not_restored == () and result.to_json()["restore_jid"] == restore.jid

    def broken_sync(minion: str, fun: str, arg: Sequence[Any], kwarg: Mapping[str, Any]) -> Behavior | None:
        if fun == "grains.item":
            return Behavior(ret={"roles": ROLES[minion] or []})
        if fun == "saltutil.sync_all" and minion == "test-app-1":
            return Behavior(ret="ERROR: Unable to sync modules", retcode=1)
        return None

    failed = run(ScriptedSaltClient(minions=FLEET, script=broken_sync))
    assert failed.not_restored == ("test-app-1",) and not failed.ok
    assert failed.to_json()["not_restored"] == ["test-app-1"]
    lines: list[str] = []
    format_text(failed, lines.append)
    assert any("NOT RESTORED" in line and "test-app-1" in line for line in lines)


def test_a_sampled_minion_that_never_answers_is_missing_after_the_timeout() -> None:
    roles = {**ROLES}
    c = client({"*": state("pkg.installed", "nginx", result=True)}, roles=roles, never=("test-web-1",))
    result = run(c)
    # It did not answer the grains either: not sampled, reported as unreachable; nothing is missing.
    assert "test-web-1" in result.unreachable and "test-web-1" not in result.minions
    assert result.ok

    def late(minion: str, fun: str, arg: Sequence[Any], kwarg: Mapping[str, Any]) -> Behavior | None:
        if fun == "grains.item":
            return Behavior(ret={"roles": ROLES[minion] or []})
        if fun == "state.apply" and minion == "test-web-1":
            return Behavior(delivery="never")
        return None

    c2 = ScriptedSaltClient(minions=FLEET, script=late)
    result = run(c2)
    assert result.missing == ("test-web-1",) and not result.ok
    assert c2.lookups, "the MoM's job cache is consulted before a minion counts as missing"


def test_refuses_when_the_release_is_not_exposed_before_publishing_anything() -> None:
    c = client({"*": {}})
    with pytest.raises(SyncError) as exc:
        run(c, FakeServing(exposed=False))
    assert "saltpipe sync test --release rel-0123456789ab --canary" in str(exc.value)
    assert c.published == []


def test_refuses_a_top_file_keyed_base_before_publishing_anything() -> None:
    c = client({"*": {}})
    with pytest.raises(PlanError):
        run(c, FakeServing(top="base:\n  '*':\n    - base\n"))
    assert c.published == []


def test_no_minion_answering_is_an_error() -> None:
    c = ScriptedSaltClient(minions={})
    with pytest.raises(UsageError, match="no minion of test answered"):
        run(c)


def test_sample_per_role_must_be_positive() -> None:
    with pytest.raises(UsageError):
        run(client({"*": {}}), per_role=0)
