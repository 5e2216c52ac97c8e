"""GitLab's deployment record of a rollout follows its journal (pipeline/deployments.py), on recorded shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from gitlab_helpers import API, PROJECT, SERVER, TOKEN, serve

from pipeline.deployments import DeploymentTrail, trail_from_environ
from pipeline.errors import GitLabError
from pipeline.gitlab import PythonGitLabClient

RELEASE_SHA = "7d1e0a55b2c4f6e8091a2b3c4d5e6f7081928374"
RECORDED = {"deployment_id": 5120, "iid": 87, "status": "running"}


def _trail() -> DeploymentTrail:
    return DeploymentTrail(PythonGitLabClient(SERVER, TOKEN, "1234"), "main")


def _bodies(rsps: responses.RequestsMock) -> list[tuple[str, dict[str, object]]]:
    return [(c.request.method, json.loads(c.request.body)) for c in rsps.calls if c.request.body]


class Journal(list):
    def __call__(self, event: str, **fields: Any) -> None:
        self.append({"event": event, **fields})


def test_opening_records_a_running_deployment(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deployment_create", {"status": 201})
    deployment = _trail().open("production", RELEASE_SHA)
    assert (deployment.id, deployment.iid, deployment.status) == (5120, 87, "running")
    assert _bodies(gitlab_api) == [
        ("POST", {"environment": "production", "sha": RELEASE_SHA, "ref": "main", "tag": False, "status": "running"})]
    assert gitlab_api.calls[0].request.headers["PRIVATE-TOKEN"] == TOKEN


def test_opening_fails_closed(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deployment_create", {"status": 403, "json": {"message": "403 Forbidden"}})
    with pytest.raises(GitLabError, match="cannot record the deployment .* so the rollout does not start.*HTTP 403") as e:
        _trail().open("production", RELEASE_SHA)
    assert e.value.exit_code == 2


def test_a_halt_marks_it_failed_and_the_finish_says_nothing_more(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deployment_update", {"patch": {"status": "failed"}})
    journal = Journal()
    _trail().follow({"event": "halted", "batch": 0}, RECORDED, journal)
    assert _bodies(gitlab_api) == [("PUT", {"status": "failed"})]
    assert journal == [{"event": "deployment_updated", "deployment_id": 5120, "iid": 87, "status": "failed"}]
    _trail().follow({"event": "rollout_finished", "outcome": "rolled_back"}, {**RECORDED, "status": "failed"}, journal)
    assert len(gitlab_api.calls) == 1


def test_a_succeeded_rollout_marks_it_success(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deployment_update", {"patch": {"status": "success"}})
    journal = Journal()
    _trail().follow({"event": "rollout_finished", "outcome": "succeeded"}, RECORDED, journal)
    assert _bodies(gitlab_api) == [("PUT", {"status": "success"})] and journal[0]["status"] == "success"


def test_other_records_and_no_deployment_ask_nothing(gitlab_api: responses.RequestsMock) -> None:
    journal = Journal()
    _trail().follow({"event": "batch_started", "batch": 0}, RECORDED, journal)
    _trail().follow({"event": "halted", "batch": 0}, None, journal)
    assert len(gitlab_api.calls) == 0 and journal == []


def test_a_status_gitlab_does_not_take_is_journaled_loudly_with_what_to_do(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deployment_update", {"status": 502, "json": {"message": "502 Bad Gateway"}})
    journal = Journal()
    _trail().follow({"event": "rollout_finished", "outcome": "succeeded"}, RECORDED, journal)
    (failure,) = journal
    assert failure["event"] == "deployment_record_failed" and failure["status"] == "success"
    assert "HTTP 502" in failure["message"]
    assert "PUT /projects/:id/deployments/5120 status=success" in failure["hint"] and "outcome stands" in failure["hint"]


def test_without_gitlab_there_is_no_trail() -> None:
    assert trail_from_environ({"CI_SERVER_URL": SERVER, "CI_PROJECT_ID": "1234"}) is None


def test_in_ci_the_trail_uses_the_jobs_ref(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deployment_create", {"status": 201})
    trail = trail_from_environ({"CI_SERVER_URL": SERVER, "CI_PROJECT_ID": "1234", "SALTPIPE_GITLAB_TOKEN": TOKEN,
                                "CI_COMMIT_REF_NAME": "main"})
    assert trail is not None and trail.ref == "main"
    trail.open("production", RELEASE_SHA)
    assert gitlab_api.calls[0].request.url == f"{API}{PROJECT}/deployments"
