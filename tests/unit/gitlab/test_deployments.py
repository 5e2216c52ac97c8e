"""Recording a rollout in GitLab's deployments API: running, then success or failed."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import responses
from conftest import API, PROJECT, SERVER, TOKEN, serve

from pipeline.deployments import NullRecorder, recorder_from_ci
from pipeline.errors import GitLabError
from pipeline.gitlab import CiEnvironment, PythonGitLabClient

RELEASE_SHA = "7d1e0a55b2c4f6e8091a2b3c4d5e6f7081928374"


def _client() -> PythonGitLabClient:
    return PythonGitLabClient(SERVER, TOKEN, "1234")


def _bodies(rsps: responses.RequestsMock) -> list[tuple[str, dict[str, object]]]:
    return [(c.request.method, json.loads(c.request.body)) for c in rsps.calls if c.request.body]


def test_deployment_recorded_running_then_success(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deployment_create", {"status": 201})
    serve(gitlab_api, "deployment_update", {"patch": {"status": "success", "updated_at": "2025-03-04T11:31:45.006Z"}})
    recorder = recorder_from_ci(CiEnvironment.from_environ({}), client=_client())

    with recorder.record("production", sha=RELEASE_SHA, ref="main") as deployment:
        # while the rollout runs, GitLab shows it running
        assert deployment.deployment is not None and deployment.deployment.status == "running"
        assert len(gitlab_api.calls) == 1
        deployment.outcome(True)

    assert _bodies(gitlab_api) == [
        ("POST", {"environment": "production", "sha": RELEASE_SHA, "ref": "main", "tag": False, "status": "running"}),
        ("PUT", {"status": "success"}),
    ]
    assert deployment.final is not None and deployment.final.status == "success"
    assert gitlab_api.calls[0].request.headers["PRIVATE-TOKEN"] == TOKEN


def test_halted_rollout_is_recorded_failed(gitlab_api: responses.RequestsMock) -> None:
    """A rollout that halts on its canary returns a result, it does not raise: outcome(False) says failed."""
    serve(gitlab_api, "deployment_create", {"status": 201})
    serve(gitlab_api, "deployment_update", {"patch": {"status": "failed"}})
    with recorder_from_ci(CiEnvironment.from_environ({}), client=_client()).record(
        "production", sha=RELEASE_SHA, ref="main"
    ) as deployment:
        deployment.outcome(False)
    assert _bodies(gitlab_api)[-1] == ("PUT", {"status": "failed"})


def test_exception_marks_failed_and_propagates(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deployment_create", {"status": 201})
    serve(gitlab_api, "deployment_update", {"patch": {"status": "failed"}})
    with pytest.raises(RuntimeError, match="syndic-prod-b unreachable"):
        with recorder_from_ci(CiEnvironment.from_environ({}), client=_client()).record(
            "production", sha=RELEASE_SHA, ref="main"
        ):
            raise RuntimeError("syndic-prod-b unreachable")
    assert _bodies(gitlab_api)[-1] == ("PUT", {"status": "failed"})


def test_creating_the_record_fails_closed(gitlab_api: responses.RequestsMock) -> None:
    """Before anything changes: GitLab refusing the record stops the rollout (it must be visible)."""
    serve(gitlab_api, "deployment_create", {"status": 403, "json": {"message": "403 Forbidden"}})
    ran: list[bool] = []
    with pytest.raises(GitLabError, match="HTTP 403"):
        with recorder_from_ci(CiEnvironment.from_environ({}), client=_client()).record(
            "production", sha=RELEASE_SHA, ref="main"
        ):
            ran.append(True)
    assert ran == []


def test_final_status_failure_is_a_warning_not_a_lie(gitlab_api: responses.RequestsMock) -> None:
    """After the rollout happened, GitLab failing to take the status does not turn success into failure."""
    serve(gitlab_api, "deployment_create", {"status": 201})
    serve(gitlab_api, "deployment_update", {"status": 502, "json": {"message": "502 Bad Gateway"}})
    with recorder_from_ci(CiEnvironment.from_environ({}), client=_client()).record(
        "test", sha=RELEASE_SHA, ref="main"
    ) as deployment:
        pass
    assert deployment.final is None
    assert len(deployment.warnings) == 1 and "as success" in deployment.warnings[0] and "HTTP 502" in deployment.warnings[0]


def test_outside_ci_nothing_is_recorded(gitlab_api: responses.RequestsMock) -> None:
    recorder = recorder_from_ci(CiEnvironment.from_environ({"CI_SERVER_URL": SERVER, "CI_PROJECT_ID": "1234"}))
    assert isinstance(recorder, NullRecorder)
    with recorder.record("production", sha=RELEASE_SHA, ref="main") as deployment:
        deployment.outcome(True)
    assert deployment.deployment is None and len(gitlab_api.calls) == 0


def test_in_ci_the_recorder_uses_the_job_variables(
    gitlab_api: responses.RequestsMock, ci_env: Callable[[dict[str, str | None]], None]
) -> None:
    import os

    ci_env({"CI_COMMIT_REF_NAME": "main", "CI_COMMIT_SHA": RELEASE_SHA})
    ci = CiEnvironment.from_environ(os.environ)
    serve(gitlab_api, "deployment_create", {"status": 201})
    serve(gitlab_api, "deployment_update", {"patch": {"status": "success"}})
    with recorder_from_ci(ci).record("production", sha=ci.commit_sha or "", ref=ci.ref or "") as deployment:
        pass
    assert deployment.final is not None and deployment.final.status == "success"
    assert gitlab_api.calls[0].request.url == f"{API}{PROJECT}/deployments"
