"""The audit chain of a rollout: the GitLab deployment record follows the journal across halt, rollback and
resume (recorded GitLab API shapes served by ``responses``; the Salt side scripted), and the report shows the
whole chain MR -> commit -> release -> job ids -> results -> deployment."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import responses
from rollout_helpers import RELEASE, TEST_FLEET, Crash, Harness, crash_at

from pipeline.deployments import DeploymentTrail
from pipeline.errors import GitLabError
from pipeline.gitlab import PythonGitLabClient
from pipeline.rollout import Outcome, RolloutRequest, RolloutStore, resume_rollout, rollback_environment, start_rollout
from scripted_client import Behavior, ScriptedSaltClient, failed_state_return

SERVER = "https://gitlab.example.net"
DEPLOYMENTS = f"{SERVER}/api/v4/projects/1234/deployments"
PAYLOAD = json.loads((Path(__file__).parents[1] / "gitlab" / "payloads" / "deployment.json").read_text())
COMMIT = "7d1e0a55b2c4f6e8091a2b3c4d5e6f7081928374"
MR = {"iid": 42, "url": f"{SERVER}/ops/salt-states/-/merge_requests/42", "title": "web: worker connections",
      "approvers": ["bob"], "branch": "main"}


@pytest.fixture
def gitlab() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.POST, DEPLOYMENTS, json=PAYLOAD, status=201)
        for status in ("success", "failed"):
            rsps.add(responses.PUT, f"{DEPLOYMENTS}/5120", json={**PAYLOAD, "status": status},
                     match=[responses.matchers.json_params_matcher({"status": status})])
        yield rsps


def _calls(rsps: Any) -> list[tuple[str, Any]]:
    return [(c.request.method, json.loads(c.request.body)["status"]) for c in rsps.calls]


def _ctx(harness: Harness, client: ScriptedSaltClient, **kwargs: Any):
    trail = DeploymentTrail(PythonGitLabClient(SERVER, "glpat-test", "1234"), "main")
    return replace(harness.ctx("test", client, **kwargs), deployments=trail)


def test_a_succeeded_rollout_is_a_successful_deployment_and_the_report_shows_the_chain(harness: Harness, gitlab) -> None:
    client = ScriptedSaltClient(TEST_FLEET)
    order: list[str] = []

    def observe(record: dict[str, Any]) -> None:
        order.append(record["event"])

    result = start_rollout(RolloutRequest(_ctx(harness, client, observer=observe), RELEASE, commit=COMMIT, merge_request=MR))
    assert result.outcome is Outcome.SUCCEEDED
    assert _calls(gitlab) == [("POST", "running"), ("PUT", "success")]
    # Recorded in GitLab before the first job was published.
    assert order.index("deployment_recorded") < order.index("batch_started")
    chain = json.loads(result.report_path.read_text())["chain"]
    assert chain["merge_request"] == MR and chain["commit"] == COMMIT and chain["release"] == RELEASE
    assert chain["jobs"] and set(chain["jobs"]) == {r.jid for r in client.published}
    assert chain["results"] == {"succeeded": len(TEST_FLEET)}
    assert chain["deployment"] == {"id": 5120, "iid": 87, "status": "success"}
    from pipeline.rollout.report import render_html

    page = render_html(json.loads(result.report_path.read_text()))
    assert f"audit chain: !42 -&gt; commit {COMMIT[:12]} -&gt; release {RELEASE}" in page
    assert "GitLab deployment #87 (success)" in page


def test_a_halt_and_its_rollback_are_one_failed_deployment(harness: Harness, gitlab) -> None:
    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        if fun == "state.apply" and minion == "test-web-1" and kwarg.get("saltenv") == RELEASE:
            return Behavior(ret=failed_state_return(), retcode=2)
        return None

    harness.serving.base = "rel-ba9876543210"
    result = start_rollout(RolloutRequest(_ctx(harness, ScriptedSaltClient(TEST_FLEET, script=script)), RELEASE, commit=COMMIT))
    assert result.outcome is Outcome.ROLLED_BACK
    assert _calls(gitlab) == [("POST", "running"), ("PUT", "failed")]
    assert json.loads(result.report_path.read_text())["chain"]["deployment"]["status"] == "failed"


def test_a_resumed_rollout_keeps_its_one_deployment(harness: Harness, gitlab) -> None:
    client = ScriptedSaltClient(TEST_FLEET)

    crash = crash_at("step_published", batch=1)

    with pytest.raises(Crash):
        start_rollout(RolloutRequest(_ctx(harness, client, observer=crash), RELEASE, commit=COMMIT))
    assert _calls(gitlab) == [("POST", "running")]
    result = resume_rollout(_ctx(harness, client))
    assert result.outcome is Outcome.SUCCEEDED
    assert _calls(gitlab) == [("POST", "running"), ("PUT", "success")]  # no second deployment


def test_an_unfinished_rollout_rolled_back_by_the_operator_is_failed(harness: Harness, gitlab) -> None:
    client = ScriptedSaltClient(TEST_FLEET)
    harness.serving.base = "rel-ba9876543210"

    crash = crash_at("step_published", batch=1)

    with pytest.raises(Crash):
        start_rollout(RolloutRequest(_ctx(harness, client, observer=crash), RELEASE, commit=COMMIT))
    rollback_environment(_ctx(harness, client))
    assert _calls(gitlab) == [("POST", "running"), ("PUT", "failed")]


def test_gitlab_refusing_the_record_stops_the_rollout_before_any_job(harness: Harness) -> None:
    client = ScriptedSaltClient(TEST_FLEET)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, DEPLOYMENTS, json={"message": "403 Forbidden"}, status=403)
        with pytest.raises(GitLabError, match="rollout does not start"):
            start_rollout(RolloutRequest(_ctx(harness, client), RELEASE, commit=COMMIT))
    assert client.published == [] and RolloutStore(harness.state_dir).current("test") is None


def test_a_status_gitlab_does_not_take_is_in_the_report_and_the_outcome_stands(harness: Harness) -> None:
    client = ScriptedSaltClient(TEST_FLEET)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, DEPLOYMENTS, json=PAYLOAD, status=201)
        rsps.add(responses.PUT, f"{DEPLOYMENTS}/5120", json={"message": "502 Bad Gateway"}, status=502)
        result = start_rollout(RolloutRequest(_ctx(harness, client), RELEASE, commit=COMMIT))
    assert result.outcome is Outcome.SUCCEEDED
    (failure,) = json.loads(result.report_path.read_text())["chain"]["deployment_failures"]
    assert failure["status"] == "success" and "HTTP 502" in failure["message"] and "by hand" in failure["hint"]


def test_without_gitlab_the_journal_says_nothing_was_recorded(harness: Harness) -> None:
    result = start_rollout(RolloutRequest(harness.ctx("test", ScriptedSaltClient(TEST_FLEET)), RELEASE, commit=COMMIT))
    assert harness.events("deployment_skipped")[0]["reason"].startswith("GitLab is not configured")
    assert json.loads(result.report_path.read_text())["chain"]["deployment"] is None


def test_status_finds_the_chain_of_the_served_release(harness: Harness, gitlab) -> None:
    from pipeline.rollout.audit import describe_chain
    from pipeline.rollout.audit import served_chain

    assert served_chain(harness.state_dir, "test", RELEASE) is None
    start_rollout(RolloutRequest(_ctx(harness, ScriptedSaltClient(TEST_FLEET)), RELEASE, commit=COMMIT, merge_request=MR))
    chain = served_chain(harness.state_dir, "test", RELEASE)
    assert chain is not None and chain["outcome"] == "succeeded" and chain["merge_request"]["iid"] == 42
    line = describe_chain(chain)
    assert line.startswith(f"!42 -> commit {COMMIT[:12]} -> release {RELEASE} -> rollout ")
    assert "Salt job(s)" in line and f"succeeded {len(TEST_FLEET)}" in line and line.endswith("GitLab deployment #87 (success)")
