"""The loopback GitLab the demo and the gitlab-ci test use answers the real client the way saltpipe needs:
outside CI (no ref: the default branch is asked), approvals by token owner, deployments recorded."""

from __future__ import annotations

from pipeline.config import PipelineConfig
from pipeline.deployments import trail_from_environ
from pipeline.gitlab import CiEnvironment, PythonGitLabClient
from pipeline.gitlab.loopback import LoopbackGitLab
from pipeline.rollout.approvals import GitLabApprovals


def test_the_real_client_against_the_loopback_gitlab() -> None:
    gitlab = LoopbackGitLab().start()
    try:
        operator = gitlab.add_user("demo-operator", access_level=40)
        reviewer = gitlab.add_user("demo-reviewer", access_level=40)
        gitlab.protect("production")
        trail = trail_from_environ(gitlab.environ(operator))
        assert trail is not None and trail.ref == "main"  # asked GitLab for the default branch
        deployment = trail.open("production", "a" * 40)
        assert deployment.status == "running" and gitlab.deployments[0]["user"]["username"] == "demo-operator"
        syndic = {"name": "s", "file_roots": {"type": "local", "path": "/srv/s"}}
        env = PipelineConfig.model_validate({"environments": {"production": {
            "syndics": [syndic], "target": "*", "canary": 1, "batches": ["100%"], "approvals_required": 1}}},
        ).environment("production")
        ci = CiEnvironment.from_environ(gitlab.environ(reviewer))
        approvals = GitLabApprovals(PythonGitLabClient(gitlab.url, reviewer, "1"), ci)
        approver = approvals.approver(env, None)
        assert approver.name == "demo-reviewer" and "protected environment production" in approver.allowed_by
        # Rollout notifications: no merge request for the commit, so a commit comment.
        client = PythonGitLabClient(gitlab.url, operator, "1")
        assert client.commit_merge_requests("b" * 40) == ()
        client.create_commit_comment("b" * 40, "rollout finished")
        assert gitlab.comments == [{"note": "rollout finished", "author": gitlab.users["demo-operator"], "sha": "b" * 40}]
    finally:
        gitlab.stop()
