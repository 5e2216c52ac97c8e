"""Rollout approvals proven by GitLab (pipeline/rollout/approvals.py), on recorded API shapes.

Deploy pipeline 9107 on main was started by alice (her merge); bob, a Maintainer of the project, played its
manual gate ``approve:production`` (item 2 of pipeline_jobs.json, patched to played).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import responses
from gitlab_helpers import SERVER, TOKEN, serve

from pipeline.config import PipelineConfig
from pipeline.errors import GitLabError
from pipeline.gitlab import CiEnvironment, PythonGitLabClient
from pipeline.rollout import ApprovalStore, RolloutStore
from pipeline.rollout.approvals import GitLabApprovals, check_approvals
from pipeline.rollout.model import PromotionRefused
from pipeline.rollout.promotion import PromotionCheck

RELEASE = "rel-0123456789ab"
BOB = {"id": 12, "username": "bob", "name": "Bob Moreau", "state": "active"}
#: The gate job played by bob (GitLab sets the job's user to whoever played a manual job).
GATE_PLAYED_BY_BOB = {"2": {"status": "success", "user": BOB}}


def _config(source: str = "protected_environment", min_level: str = "maintainer") -> PipelineConfig:
    syndic = {"name": "s", "file_roots": {"type": "local", "path": "/srv/s"}}
    return PipelineConfig.model_validate({"environments": {
        "test": {"syndics": [syndic], "target": "*", "canary": 1, "batches": ["100%"]},
        "production": {"syndics": [syndic], "target": "*", "canary": 1, "batches": ["100%"], "approvals_required": 1,
                       "approvers": {"source": source, "min_access_level": min_level}},
    }})


def _authority(in_ci: bool = True) -> GitLabApprovals:
    env = {"CI_SERVER_URL": SERVER, "CI_PROJECT_ID": "1234", "SALTPIPE_GITLAB_TOKEN": TOKEN}
    if in_ci:
        env["CI_PIPELINE_ID"] = "9107"
    return GitLabApprovals(PythonGitLabClient(SERVER, TOKEN, "1234"), CiEnvironment.from_environ(env))


def test_in_ci_the_approver_is_who_played_the_gate_job_and_gitlab_allows_them(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deploy_jobs", {"patch": GATE_PLAYED_BY_BOB})
    serve(gitlab_api, "protected_production")
    serve(gitlab_api, "member_bob")
    approver = _authority().approver(_config().environment("production"), "bob")
    assert (approver.name, approver.user_id) == ("bob", 12)
    assert approver.proof == "played approve:production (job 55129) in pipeline 9107"
    assert approver.allowed_by == "deploy access to protected environment production (Maintainers)"


def test_in_ci_a_name_other_than_the_gate_player_is_refused(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deploy_jobs", {"patch": GATE_PLAYED_BY_BOB})
    with pytest.raises(PromotionRefused, match="--approve alice: approve:production of pipeline 9107 was played by bob"):
        _authority().approver(_config().environment("production"), "alice")


def test_in_ci_an_unplayed_gate_is_no_approval(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deploy_jobs", {"patch": {"2": {"status": "manual"}}})
    with pytest.raises(PromotionRefused, match="no played approve:production job"):
        _authority().approver(_config().environment("production"), "alice")


def test_the_pipeline_starter_is_the_user_gitlab_names(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deploy_pipeline")
    assert _authority().starter() == "alice"


def test_the_pipeline_starter_unknown_fails_closed(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deploy_pipeline", {"patch": {"user": None}})
    with pytest.raises(GitLabError, match="does not say who started pipeline 9107") as excinfo:
        _authority().starter()
    assert excinfo.value.exit_code == 2


def test_a_user_outside_the_deploy_access_levels_is_refused(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deploy_jobs", {"patch": GATE_PLAYED_BY_BOB})
    serve(gitlab_api, "protected_production")
    serve(gitlab_api, "member_bob", {"patch": {"access_level": 30}})  # a Developer
    serve(gitlab_api, "security_group_77")  # carol, dave, erin: not bob
    with pytest.raises(PromotionRefused, match="bob may not approve rollouts to production"):
        _authority().approver(_config().environment("production"), "bob")


def test_a_developer_in_an_allowed_group_may_approve(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deploy_jobs", {"patch": GATE_PLAYED_BY_BOB})
    serve(gitlab_api, "protected_production")
    serve(gitlab_api, "member_bob", {"patch": {"access_level": 30}})
    serve(gitlab_api, "security_group_77", {"patch": {"0": {"id": 12, "username": "bob"}}})
    approver = _authority().approver(_config().environment("production"), "bob")
    assert approver.allowed_by == "deploy access to protected environment production (group 77)"


def test_an_unprotected_environment_names_no_approver(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deploy_jobs", {"patch": GATE_PLAYED_BY_BOB})
    serve(gitlab_api, "protected_production", {"status": 404, "json": {"message": "404 Not found"}})
    with pytest.raises(PromotionRefused, match="production is not a protected environment") as excinfo:
        _authority().approver(_config().environment("production"), "bob")
    assert "approvers.source: project_members" in (excinfo.value.hint or "")


def test_project_members_source_checks_the_role(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deploy_jobs", {"patch": GATE_PLAYED_BY_BOB})
    serve(gitlab_api, "member_bob", {"patch": {"access_level": 30}})
    with pytest.raises(PromotionRefused, match="project role developer, at least maintainer is required"):
        _authority().approver(_config("project_members").environment("production"), "bob")


def test_not_a_member_is_refused(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deploy_jobs", {"patch": GATE_PLAYED_BY_BOB})
    serve(gitlab_api, "member_bob", {"status": 404, "json": {"message": "404 Not found"}})
    with pytest.raises(PromotionRefused, match="project role none \\(not a member\\)"):
        _authority().approver(_config("project_members").environment("production"), "bob")


def test_outside_ci_the_approver_is_the_tokens_owner(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "user", {"json": BOB})
    serve(gitlab_api, "member_bob")
    approver = _authority(in_ci=False).approver(_config("project_members").environment("production"), None)
    assert (approver.name, approver.proof, approver.allowed_by) == ("bob", "GitLab token of bob", "project maintainer")


def test_outside_ci_a_typed_name_is_not_an_approval(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "user", {"json": BOB})
    with pytest.raises(PromotionRefused, match="outside CI an approval is given with the approver's own GitLab token"):
        _authority(in_ci=False).approver(_config().environment("production"), "dave")


def test_gitlab_unreachable_fails_closed(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "deploy_jobs", {"error": "connection"})
    with pytest.raises(GitLabError, match="cannot reach GitLab") as excinfo:
        _authority().approver(_config().environment("production"), "bob")
    assert excinfo.value.exit_code == 2


def _check(tmp_path: Path, approve: list[str], authority: GitLabApprovals | None) -> PromotionCheck:
    cfg = _config("project_members")
    return check_approvals(authority, cfg, cfg.environment("production"), RELEASE, approve,
                           RolloutStore(tmp_path), ApprovalStore(tmp_path))


def test_the_starter_cannot_approve_their_own_rollout(gitlab_api: responses.RequestsMock, tmp_path: Path) -> None:
    serve(gitlab_api, "deploy_pipeline", {"patch": {"user": BOB}})  # bob started the pipeline and played the gate
    serve(gitlab_api, "deploy_jobs", {"patch": GATE_PLAYED_BY_BOB})
    serve(gitlab_api, "member_bob")
    with pytest.raises(PromotionRefused, match="bob starts this rollout .* and cannot approve it too"):
        _check(tmp_path, ["bob"], _authority())
    assert ApprovalStore(tmp_path).list("production", RELEASE) == ()


def test_a_valid_approval_is_recorded_with_gitlabs_proof(gitlab_api: responses.RequestsMock, tmp_path: Path) -> None:
    serve(gitlab_api, "deploy_pipeline")  # alice started it
    serve(gitlab_api, "deploy_jobs", {"patch": GATE_PLAYED_BY_BOB})
    serve(gitlab_api, "member_bob")  # asked when recording, and again when counting (still allowed?)
    check = _check(tmp_path, ["bob"], _authority())
    assert check.to_json()["started_by"] == "alice" and [a.name for a in check.approvals] == ["bob"]
    (recorded,) = ApprovalStore(tmp_path).list("production", RELEASE)
    assert (recorded.name, recorded.user_id, recorded.allowed_by) == ("bob", 12, "project maintainer")
    assert "approve:production" in recorded.proof and "pipeline 9107" in recorded.proof


def test_without_gitlab_an_approval_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(GitLabError, match="checked against GitLab, and this run cannot reach it") as excinfo:
        _check(tmp_path, ["bob"], None)
    assert excinfo.value.exit_code == 2
